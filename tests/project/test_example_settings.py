"""The example project's settings, with and without credentials, and its .env.example."""

from __future__ import annotations

import ast
import gettext
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from django_zhenzi.sandbox import Sandbox
from tests.project.example import (
    EXAMPLE,
    ISSUE_VARIABLES,
    env_example_variables,
    example_env,
    load_settings,
    settings_variables,
)

pytestmark = pytest.mark.slow


# --- Settings ------------------------------------------------------------------------------------


def test_settings_without_credentials_use_the_sandbox(tmp_path):
    loaded = load_settings(tmp_path)
    zhenzi = loaded["ZHENZI"]
    assert loaded["USE_SANDBOX"] is True
    assert zhenzi["API_URL"] == "http://127.0.0.1:8086"
    assert zhenzi["APP_ID"] and zhenzi["APP_SECRET"]
    assert len(zhenzi["CALLBACK_TOKEN"]) >= 16
    assert "{code}" in zhenzi["CODE_MESSAGE"]
    assert loaded["DEBUG"] is True
    assert loaded["LANGUAGE_CODE"] == "zh-hans"
    assert loaded["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert loaded["DATABASE"]["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["DATABASE"]["NAME"] == str(EXAMPLE / "db.sqlite3")


def test_sandbox_port_moves_the_api_url(tmp_path):
    loaded = load_settings(tmp_path, SANDBOX_PORT="18123", ZHENZI_API_URL="https://ignored.test")
    assert loaded["USE_SANDBOX"] is True
    assert loaded["ZHENZI"]["API_URL"] == "http://127.0.0.1:18123"


def test_settings_with_credentials_talk_to_zhenzi(tmp_path):
    loaded = load_settings(
        tmp_path,
        ZHENZI_APP_ID="my-app",
        ZHENZI_APP_SECRET="my-secret-value",
        ZHENZI_API_URL="https://sms.zhenzikj.com",
        ZHENZI_CALLBACK_TOKEN="a-callback-token-of-my-own",
        SECRET_KEY="a-secret-key-of-my-own",
        DEBUG="False",
        ALLOWED_HOSTS="example.com,www.example.com",
        DATABASE_URL="postgres://user:pw@127.0.0.1:5432/zhenzi_example",
        LANGUAGE_CODE="en",
        SANDBOX_PORT="18124",
    )
    zhenzi = loaded["ZHENZI"]
    assert loaded["USE_SANDBOX"] is False
    assert (zhenzi["APP_ID"], zhenzi["APP_SECRET"]) == ("my-app", "my-secret-value")
    assert zhenzi["API_URL"] == "https://sms.zhenzikj.com"
    assert zhenzi["CALLBACK_TOKEN"] == "a-callback-token-of-my-own"
    assert loaded["SECRET_KEY"] == "a-secret-key-of-my-own"
    assert loaded["DEBUG"] is False
    assert loaded["ALLOWED_HOSTS"] == ["example.com", "www.example.com"]
    assert loaded["DATABASE"]["ENGINE"] == "django.db.backends.postgresql"
    assert loaded["DATABASE"]["NAME"] == "zhenzi_example"
    assert loaded["LANGUAGE_CODE"] == "en"


def test_credentials_alone_use_the_personal_endpoint_and_no_default_token(tmp_path):
    loaded = load_settings(tmp_path, ZHENZI_APP_ID="my-app", ZHENZI_APP_SECRET="my-secret-value")
    assert loaded["ZHENZI"]["API_URL"] == "https://sms_developer.zhenzikj.com"
    # The sandbox's well-known token must never guard a real site's callback.
    assert loaded["ZHENZI"]["CALLBACK_TOKEN"] == ""


def test_a_code_template_replaces_the_code_text(tmp_path):
    loaded = load_settings(tmp_path, ZHENZI_CODE_TEMPLATE_ID="1001")
    assert loaded["ZHENZI"]["CODE_TEMPLATE_ID"] == "1001"
    assert loaded["ZHENZI"]["CODE_MESSAGE"] == ""


def test_env_example_lists_every_variable_the_settings_read():
    listed = env_example_variables()
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert set(listed) == settings_variables()
    assert set(listed) >= ISSUE_VARIABLES


def po_string(quoted_lines: str) -> str:
    """The text of a .po string written as one or more quoted lines."""
    return "".join(ast.literal_eval(line) for line in quoted_lines.splitlines() if line)


def po_translations(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file without plurals (the header left out)."""
    pattern = r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)'
    found = re.findall(pattern, path.read_text(encoding="utf-8"), re.MULTILINE)
    return {po_string(msgid): po_string(msgstr) for msgid, msgstr in found if po_string(msgid)}


def test_demo_translation_is_complete_and_compiled():
    directory = EXAMPLE / "demo" / "locale" / "zh_Hans" / "LC_MESSAGES"
    entries = po_translations(directory / "django.po")
    assert entries and all(entries.values()), "an untranslated string"
    with (directory / "django.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    assert {msgid: catalog.gettext(msgid) for msgid in entries} == entries, (
        "django.mo is older than django.po: run msgfmt or compilemessages"
    )


REAL_MODE_SCRIPT = """
import json, re
import django
from django.core.management import call_command
django.setup()
from django.test import Client
call_command("migrate", verbosity=0)
client = Client(HTTP_ACCEPT_LANGUAGE="en")
sent = client.post("/", {"number": "13800138000"}, follow=True)
print(json.dumps({"path": sent.request["PATH_INFO"], "page": sent.content.decode()}))
"""


def test_with_credentials_the_code_goes_to_the_configured_api_and_no_sandbox_phone_shows(
    tmp_path,
):
    with Sandbox(app_id="my-app", app_secret="my-secret-value") as provider:
        environment = example_env(
            ZHENZI_APP_ID="my-app",
            ZHENZI_APP_SECRET="my-secret-value",
            ZHENZI_API_URL=provider.url,
            ZHENZI_CODE_MESSAGE="【我的签名】验证码{code}，{minutes}分钟内有效。",
            ALLOWED_HOSTS="testserver",
            DATABASE_URL=f"sqlite:///{tmp_path / 'real.sqlite3'}",
            DJANGO_SETTINGS_MODULE="example_project.settings",
            PYTHONPATH=str(EXAMPLE),
        )
        done = subprocess.run(
            [sys.executable, "-c", REAL_MODE_SCRIPT],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.splitlines()[-1])
        assert result["path"] == "/verify/"
        assert [message["number"] for message in provider.messages] == ["13800138000"]
        assert provider.messages[0]["message"].startswith("【我的签名】验证码")
    body = result["page"].split("<body>", 1)[1]
    assert "A code was sent to 13800138000." in body
    assert "sandbox" not in body.lower()
