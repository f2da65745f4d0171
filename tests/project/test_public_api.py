"""The public surface: ``from django_zhenzi import ...`` (lazy at run time, typed for type
checkers), ``django_zhenzi.exceptions``, and the old import paths that keep working."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import django_zhenzi
from django_zhenzi import exceptions
from tests.paths import REPO


def run_python(code: str) -> str:
    """Run ``code`` in a new interpreter without Django settings; its standard output."""
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow  # a new interpreter
def test_importing_the_package_imports_no_django():
    shown = run_python(
        """
        import sys
        import django_zhenzi
        import django_zhenzi.exceptions
        print(sorted(name for name in sys.modules if name.split(".")[0] == "django"))
        public = {"send_sms", "get_backend", "send_code", "check_code"}
        print(sorted(set(dir(django_zhenzi)) & public))
        """
    )

    assert shown.splitlines() == ["[]", "['check_code', 'get_backend', 'send_code', 'send_sms']"]


@pytest.mark.slow  # a new interpreter
def test_the_client_works_without_django_and_its_errors_are_the_public_ones():
    shown = run_python(
        """
        import sys
        from django_zhenzi.client import ZhenziClient
        from django_zhenzi.exceptions import ZhenziAPIError
        from django_zhenzi.sandbox import Sandbox

        with Sandbox(port=0, app_id="app", app_secret="secret") as sandbox:
            with ZhenziClient(sandbox.url, "app", "secret", timeout=5) as client:
                answer = client.send("13800138000", "【测试】你好", message_id="m" * 32)
                print(answer.code, client.balance())
            with ZhenziClient(sandbox.url, "app", "wrong", timeout=5) as client:
                try:
                    client.balance()
                except ZhenziAPIError as error:
                    print(error.code)
        print("django" in sys.modules)
        """
    )

    assert shown.split() == ["0", "9999", "110", "False"]


def test_the_public_functions_are_the_real_ones():
    from django_zhenzi.api import send_sms
    from django_zhenzi.backends import get_backend
    from django_zhenzi.verification.codes import check_code, send_code

    assert django_zhenzi.send_sms is send_sms
    assert django_zhenzi.get_backend is get_backend
    assert django_zhenzi.send_code is send_code
    assert django_zhenzi.check_code is check_code
    with pytest.raises(AttributeError, match="no attribute 'send_mail'"):
        django_zhenzi.send_mail  # noqa: B018


@pytest.mark.slow
def test_type_checkers_see_the_real_signatures(tmp_path: Path):
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        textwrap.dedent(
            """
            from django_zhenzi import check_code, get_backend, send_code, send_sms

            reveal_type(send_sms)
            reveal_type(get_backend)
            reveal_type(send_code)
            reveal_type(check_code)
            reveal_type(check_code("13800138000", "123456"))
            send_sms("13800138000", "【测试】你好", queu=True)
            """
        )
    )
    done = subprocess.run(
        [
            Path(sys.executable).with_name("mypy"),
            "--ignore-missing-imports",  # Django and requests ship no type information
            "--follow-imports=silent",  # the package's own errors are not this test's
            f"--cache-dir={tmp_path / 'cache'}",
            "--no-error-summary",
            "--hide-error-context",
            snippet,
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(REPO)},  # the editable install is an import hook
        capture_output=True,
        text=True,
        timeout=300,
    )

    lines = [line.split(": ", 1)[1] for line in done.stdout.splitlines()]
    revealed = [line for line in lines if line.startswith("note: Revealed type is")]
    assert len(revealed) == 5, done.stdout + done.stderr
    send_sms, get_backend, send_code, check_code, checked = revealed
    assert '"def (numbers: str | int | typing.Iterable[str | int], message: str' in send_sms
    assert "backend: django_zhenzi.backends.base.BaseSmsBackend | None =)" in send_sms
    assert send_sms.endswith(
        '-> django_zhenzi.models.Message | list[django_zhenzi.models.Message]"'
    )
    assert get_backend.endswith(
        '"def (path: str | None =, **options: Any) -> django_zhenzi.backends.base.BaseSmsBackend"'
    )
    assert '"def (number: str | int, *, purpose: str =' in send_code
    assert send_code.endswith('-> django_zhenzi.models.VerificationCode"')
    assert check_code.endswith('"def (number: str | int, code: str, *, purpose: str =) -> bool"')
    assert checked.endswith('"bool"')
    assert 'error: Unexpected keyword argument "queu" for "send_sms"' in done.stdout


# --- Exceptions -----------------------------------------------------------------------------------


def test_every_error_a_caller_catches_is_a_zhenzi_error():
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.ZhenziError), name
    assert issubclass(exceptions.ZhenziInputError, ValueError)
    assert issubclass(exceptions.CallbackRefused, ValueError)
    assert issubclass(exceptions.CallbackTooLarge, exceptions.CallbackRefused)
    assert issubclass(exceptions.ZhenziNotSentError, exceptions.ZhenziTransportError)
    assert issubclass(exceptions.ZhenziMaybeSentError, exceptions.ZhenziTransportError)
    assert (exceptions.CallbackRefused.status, exceptions.CallbackTooLarge.status) == (400, 413)


def test_the_old_import_paths_give_the_very_same_classes():
    import django_zhenzi.backends
    import django_zhenzi.backends.base
    import django_zhenzi.client
    import django_zhenzi.client.errors
    import django_zhenzi.services.limits
    import django_zhenzi.verification
    import django_zhenzi.webhooks.parser

    for name in (
        "ZhenziError",
        "ZhenziAPIError",
        "ZhenziInputError",
        "ZhenziTransportError",
        "ZhenziNotSentError",
        "ZhenziMaybeSentError",
    ):
        assert getattr(django_zhenzi.client, name) is getattr(exceptions, name)
        assert getattr(django_zhenzi.client.errors, name) is getattr(exceptions, name)
    assert django_zhenzi.services.limits.RateLimited is exceptions.RateLimited
    assert django_zhenzi.verification.RateLimited is exceptions.RateLimited
    assert django_zhenzi.backends.OperationNotSupported is exceptions.OperationNotSupported
    assert django_zhenzi.backends.base.OperationNotSupported is exceptions.OperationNotSupported
    assert django_zhenzi.webhooks.parser.RefusedBody is exceptions.CallbackRefused
    assert django_zhenzi.webhooks.parser.BodyTooLarge is exceptions.CallbackTooLarge


@pytest.mark.parametrize(
    ("old", "name", "new", "where"),
    [
        ("limits", "RateLimited", exceptions.RateLimited, "django_zhenzi.exceptions"),
        ("limits", "check_send", None, "django_zhenzi.services.limits"),
        ("callback", "parse_reports", None, "django_zhenzi.webhooks.parser.parse_reports"),
        ("callback", "RefusedBody", exceptions.CallbackRefused, "exceptions.CallbackRefused"),
        ("callback", "BodyTooLarge", exceptions.CallbackTooLarge, "exceptions.CallbackTooLarge"),
    ],
)
def test_the_modules_moved_by_the_new_layout_still_answer_with_a_warning(old, name, new, where):
    import importlib

    module = importlib.import_module(f"django_zhenzi.{old}")
    moved = importlib.import_module(
        "django_zhenzi.services.limits" if old == "limits" else "django_zhenzi.webhooks.parser"
    )

    with pytest.warns(DeprecationWarning, match=rf"django_zhenzi\.{old}\.{name} .*{where}") as w:
        value = getattr(module, name)

    assert value is getattr(moved, name)
    assert new is None or value is new
    assert w[0].filename == __file__  # the warning points at the caller's line


def test_a_name_the_old_modules_never_had_is_an_attribute_error_without_warning():
    import django_zhenzi.callback
    import django_zhenzi.limits

    with pytest.raises(AttributeError):
        django_zhenzi.limits.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        django_zhenzi.callback.__path__  # noqa: B018


@pytest.mark.django_db
def test_a_refused_callback_is_caught_as_a_zhenzi_error(client):
    from django.urls import reverse

    from django_zhenzi.webhooks.parser import parse_reports

    with pytest.raises(exceptions.ZhenziError) as caught:
        parse_reports(b"not a report", "text/plain")
    assert isinstance(caught.value, exceptions.CallbackRefused)
    response = client.post(
        reverse("django_zhenzi:callback", args=["test-callback-token-0123456789"]),
        data=b"not a report",
        content_type="text/plain",
    )
    assert response.status_code == 400
