"""send_code with a code made elsewhere (``code=``, ``ttl=``), as the integrations use it; and
django_zhenzi working without the integrations' packages."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

import django_zhenzi
from django_zhenzi.client import ZhenziInputError
from django_zhenzi.models import CODE_MASK, Message
from django_zhenzi.verification import check_code, send_code
from tests.project.example import REPO

CODE_MESSAGE = "【测试】您的验证码是{code}，{minutes}分钟内有效。"
NUMBER = "13800138000"


@pytest.fixture
def codes(settings):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": "django_zhenzi.backends.locmem.SmsBackend",
        "CODE_MESSAGE": CODE_MESSAGE,
    }


@pytest.mark.django_db
def test_a_given_code_is_sent_masked_with_its_own_lifetime(
    codes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = send_code(NUMBER, purpose="elsewhere", code="K7QH-M2PA", ttl=900)

    (sms,) = django_zhenzi.outbox
    assert sms.text == CODE_MESSAGE.format(code="K7QH-M2PA", minutes=15)
    assert Message.objects.get().text == CODE_MESSAGE.format(code=CODE_MASK, minutes=15)
    assert row.expires_at - row.created_at == timedelta(seconds=900)
    assert check_code(NUMBER, "K7QH-M2PA", purpose="elsewhere")


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["", "12 34", "-1234", "码1234", "x" * 33, 123456])
def test_a_given_code_must_be_letters_digits_and_dashes(codes, code):
    with pytest.raises(ZhenziInputError, match="A given code"):
        send_code(NUMBER, code=code)
    assert Message.objects.count() == 0


def test_django_zhenzi_works_without_allauth_and_two_factor():
    """With both packages unimportable, the app loads, passes its checks and sends a code; only
    importing an integration fails, naming its package."""
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"allauth", "two_factor", "django_otp"}:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, Blocked())
        import django
        from django.conf import settings

        settings.configure(
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django_zhenzi"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            ZHENZI={"BACKEND": "django_zhenzi.backends.locmem.SmsBackend",
                    "CODE_MESSAGE": "code {code}", "LIMIT_SITE_PER_DAY": 5},
            USE_TZ=True,
            SECRET_KEY="not-secret",
        )
        django.setup()
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        call_command("check", fail_level="ERROR")
        import django_zhenzi
        from django_zhenzi.verification import send_code
        from django_zhenzi.contrib import two_factor  # imports none of two-factor's modules
        send_code("13800138000")
        assert len(django_zhenzi.outbox) == 1
        try:
            import django_zhenzi.contrib.allauth.adapter
        except ModuleNotFoundError as missing:
            print("missing", missing.name)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"missing allauth(\.\w+)*\n", done.stdout)
