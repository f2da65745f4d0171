"""The demo command: its helpers, and the demo run as a user runs it."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from types import ModuleType

import pytest
import requests
from django.contrib.auth import authenticate
from django.core.management import CommandError

from django_zhenzi import send_sms
from django_zhenzi.models import Status
from tests.paths import REPO
from tests.project.example import (
    EXAMPLE,
    TEXT,
    example_env,
    free_port,
    message_statuses,
    post_form,
    running_demo,
)

pytestmark = pytest.mark.slow


# --- The demo command's helpers -----------------------------------------------------------------


@pytest.fixture
def demo_command(monkeypatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from demo.management.commands import demo

    return demo


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),  # noqa: S104 (a wildcard, not a bind)
        ("::", "http://[::1]:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_site_url_is_reachable_from_this_machine(demo_command, host, url):
    assert demo_command.site_url(host, 8000) == url


def test_callback_url_is_the_apps_callback_with_the_token(demo_command):
    url = demo_command.callback_url("http://127.0.0.1:8000")
    assert url == "http://127.0.0.1:8000/zhenzi/callback/test-callback-token-0123456789/"


def test_callback_url_needs_a_token(demo_command, settings):
    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_TOKEN": ""}
    with pytest.raises(CommandError, match="ZHENZI_CALLBACK_TOKEN"):
        demo_command.callback_url("http://127.0.0.1:8000")


@pytest.mark.django_db
def test_ensure_admin_creates_the_admin_then_resets_its_password(demo_command):
    demo_command.ensure_admin("first-password")
    demo_command.ensure_admin("second-password")
    assert authenticate(username="admin", password="first-password") is None
    admin = authenticate(username="admin", password="second-password")
    assert admin is not None
    assert admin.is_staff and admin.is_superuser


def test_start_sandbox_serves_the_configured_credentials_where_the_api_url_points(
    demo_command, settings
):
    port = free_port()
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": f"http://127.0.0.1:{port}"}
    sandbox = demo_command.start_sandbox("http://127.0.0.1:9/zhenzi/callback/x/", 0.5)
    try:
        assert sandbox.url == f"http://127.0.0.1:{port}"
        assert (sandbox.app_id, sandbox.app_secret) == ("test-app", "test-secret-value")
        assert sandbox.balance == demo_command.SANDBOX_BALANCE == 1000
        assert sandbox.callback_url == "http://127.0.0.1:9/zhenzi/callback/x/"
    finally:
        sandbox.stop()


def test_start_sandbox_on_a_busy_port_says_what_to_change(demo_command, settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings.ZHENZI = {**settings.ZHENZI, "API_URL": f"http://127.0.0.1:{port}"}
        with pytest.raises(CommandError, match="SANDBOX_PORT"):
            demo_command.start_sandbox("http://127.0.0.1:9/zhenzi/callback/x/", 0.5)


@pytest.mark.django_db(transaction=True)
def test_work_sends_queued_messages_until_stopped(demo_command, sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    queued = send_sms("13800138000", TEXT, queue=True)
    stop = threading.Event()
    worker = threading.Thread(target=demo_command.work, args=(stop,))
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sandbox.accepted_count(queued.message_id) == 0:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=20)
    assert not worker.is_alive()
    assert sandbox.accepted_count(queued.message_id) == 1
    queued.refresh_from_db()
    assert queued.status == Status.SENT


def test_banner_gives_the_login_and_says_where_sms_go(demo_command, settings):
    sandboxed = demo_command.banner("http://127.0.0.1:8000", "pass-word-1", sandboxed=True)
    real = demo_command.banner("http://127.0.0.1:8000", "pass-word-1", sandboxed=False)
    for text in (sandboxed, real):
        assert "http://127.0.0.1:8000/admin/" in text
        assert "admin" in text and "pass-word-1" in text
    assert "sandbox" in sandboxed and "sandbox" not in real
    assert settings.ZHENZI["API_URL"] in real


BANNER_SCRIPT = """
import django
django.setup()
from demo.management.commands.demo import banner
print(banner("http://127.0.0.1:8000", "7nUj2iF14S18", sandboxed=True))
"""


def readme_banner() -> str:
    """The banner the documentation shows under "Run the example" (docs/quickstart.rst, the
    code block after "prints where to go"), dedented."""
    page = (REPO / "docs" / "quickstart.rst").read_text(encoding="utf-8")
    after = page[page.index("prints where to go") :].split(".. code-block:: text\n\n", 1)[1]
    block = after.split("\n\n", 1)[0]
    return "\n".join(line.removeprefix("    ") for line in block.splitlines())


def test_the_docs_show_the_banner_a_user_sees(tmp_path):
    """With nothing set the example speaks its LANGUAGE_CODE, Chinese; so must the docs."""
    done = subprocess.run(
        [sys.executable, "-c", BANNER_SCRIPT],
        cwd=tmp_path,
        env=example_env(DJANGO_SETTINGS_MODULE="example_project.settings", PYTHONPATH=str(EXAMPLE)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert readme_banner() == done.stdout.strip("\n")


# --- The demo, run as a user runs it ------------------------------------------------------------


@pytest.mark.slow
def test_demo_runs_the_code_flow_and_reports_come_back_through_the_callback(tmp_path):
    with running_demo(tmp_path) as demo, requests.Session() as session:
        session.headers["Accept-Language"] = "en"
        with session.get(demo.url + "/admin/login/", timeout=10) as login_page:
            assert login_page.status_code == 200
        with post_form(
            session,
            demo.url + "/admin/login/?next=/admin/",
            {"username": "admin", "password": demo.admin_password},
        ) as logged_in:
            assert logged_in.url.rstrip("/").endswith("/admin"), logged_in.url

        with post_form(
            session, demo.url + "/i18n/setlang/", {"language": "zh-hans", "next": "/"}
        ) as chinese:
            assert "手机号登录" in chinese.text
        with post_form(session, demo.url + "/", {"number": "13800138000"}) as code_page:
            assert code_page.url == demo.url + "/verify/"
            sms = re.search(r"data-sandbox-sms>([^<]+)<", code_page.text)
            assert sms, code_page.text
            code = re.search(r"验证码是(\d{6})", sms.group(1))
            assert code, sms.group(1)
        with post_form(session, demo.url + "/verify/", {"code": code.group(1)}) as welcome:
            assert welcome.url == demo.url + "/welcome/"
            assert "13800138000 已通过验证。" in welcome.text

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if message_statuses(demo.database) == [("13800138000", Status.DELIVERED)]:
                break
            time.sleep(0.2)
        assert message_statuses(demo.database) == [("13800138000", Status.DELIVERED)]
        with requests.get(demo.sandbox_url + "/_sandbox/state", timeout=10) as state:
            assert state.json()["balance"] == 999
    assert demo.process.returncode == 0, demo.log()
    log = demo.log()
    assert demo.admin_password in log
    assert "POST /zhenzi/callback/[removed]/" in log
    assert "example-sandbox-callback-token" not in log
    assert "Traceback" not in log
