"""The example project: its settings with and without credentials, its system checks, its
``.env.example``, the demo command's helpers, and the demo itself run as a user runs it.

The settings and the demo run in subprocesses (as ``manage.py`` runs them), with every variable
of ``.env.example`` set empty unless a test gives it, so a developer's own
``example_project/.env`` cannot change the outcome. ``DemoServer`` is shared with the browser
test (tests/test_e2e_browser.py).
"""

from __future__ import annotations

import ast
import contextlib
import gettext
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import requests
from django.contrib.auth import authenticate
from django.core.management import CommandError
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from django_zhenzi import send_sms
from django_zhenzi.models import RateCounter, Status
from django_zhenzi.sandbox import Sandbox
from tests.paths import REPO

#: Every test here starts a sandbox server or a process: the full suite only.
pytestmark = pytest.mark.slow

EXAMPLE = REPO / "example_project"
MANAGE = EXAMPLE / "manage.py"
ENV_EXAMPLE = EXAMPLE / ".env.example"
SETTINGS_FILE = EXAMPLE / "example_project" / "settings.py"
ISSUE_VARIABLES = {
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "ZHENZI_APP_ID",
    "ZHENZI_APP_SECRET",
    "ZHENZI_API_URL",
    "ZHENZI_CALLBACK_TOKEN",
    "LANGUAGE_CODE",
}
TEXT = "【榛子沙箱】您的订单已发货，请注意查收。"
#: Seconds a started demo gets to answer, and to stop after Ctrl-C.
DEMO_START_TIMEOUT = 90.0
DEMO_STOP_TIMEOUT = 20.0


def env_example_variables() -> list[str]:
    """The variable names ``.env.example`` sets, in order."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    return re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)


def settings_variables() -> set[str]:
    """The variable names the example settings read: first arguments of ``env.*(...)`` and
    ``given(...)`` calls."""
    tree = ast.parse(SETTINGS_FILE.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        function = node.func
        reads_env = (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == "env"
        ) or (isinstance(function, ast.Name) and function.id == "given")
        first = node.args[0]
        if reads_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def example_env(**variables: str) -> dict[str, str]:
    """This process's environment (less the test settings) with every example variable empty,
    then ``variables``."""
    ignored = {*settings_variables(), "DJANGO_SETTINGS_MODULE"}
    environment = {name: value for name, value in os.environ.items() if name not in ignored}
    environment.update(dict.fromkeys(env_example_variables(), ""))
    environment.update(variables)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def load_settings(tmp_path: Path, **variables: str) -> dict[str, object]:
    """The example's settings as a fresh process sees them with ``variables`` set."""
    script = (
        "import json\n"
        "from example_project import settings as s\n"
        "print(json.dumps({'USE_SANDBOX': s.USE_SANDBOX, 'ZHENZI': s.ZHENZI, 'DEBUG': s.DEBUG,"
        " 'SECRET_KEY': s.SECRET_KEY, 'LANGUAGE_CODE': s.LANGUAGE_CODE,"
        " 'ALLOWED_HOSTS': s.ALLOWED_HOSTS, 'DATABASE': s.DATABASES['default']}))\n"
    )
    environment = example_env(**variables, PYTHONPATH=str(EXAMPLE))
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def manage(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        cwd=tmp_path,
        env=example_env(DATABASE_URL=f"sqlite:///{tmp_path / 'check.sqlite3'}", **variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


# --- The sign-in pages, in this process --------------------------------------------------------

UNDELIVERABLE = "13800138004"  # the sandbox's default undeliverable suffix is "4"


@pytest.fixture
def example_site(monkeypatch, settings, live_server) -> Iterator[Sandbox]:
    """The example's demo app served by this process in sandbox mode (the test client for its
    pages, a live server for the callback), with a sandbox that reports back through it."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "demo"]
    settings.ROOT_URLCONF = "tests.example_urls"
    settings.LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
    settings.USE_SANDBOX = True
    callback = live_server.url + reverse(
        "django_zhenzi:callback", kwargs={"token": settings.ZHENZI["CALLBACK_TOKEN"]}
    )
    with Sandbox(
        app_id="test-app",
        app_secret="test-secret-value",
        callback_url=callback,
        report_delay=0.05,
    ) as provider:
        settings.ZHENZI = {
            **settings.ZHENZI,
            "API_URL": provider.url,
            "CODE_MESSAGE": "【榛子沙箱】您的验证码是{code}，{minutes}分钟内有效。",
        }
        yield provider


def visitor(language: str = "en") -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE=language)


def request_code_for(client: Client, number: str) -> HttpResponse:
    return client.post("/", {"number": number}, follow=True)


@pytest.mark.django_db(transaction=True)
def test_the_code_page_says_when_the_code_could_not_be_delivered(example_site):
    client = visitor()
    sent = request_code_for(client, UNDELIVERABLE)
    assert sent.request["PATH_INFO"] == "/verify/"
    assert example_site.wait_for_reports(1, timeout=20), example_site.reports
    page = client.get("/verify/").content.decode()
    assert f"The code could not be delivered to {UNDELIVERABLE}." in page
    assert "ask for a new code" in page
    assert "A code was sent" not in page
    assert 'name="code"' not in page  # no form for a code that never came

    chinese = visitor("zh-hans")
    request_code_for(chinese, "13900139004")
    assert example_site.wait_for_reports(2, timeout=20), example_site.reports
    assert "验证码未能送达 13900139004" in chinese.get("/verify/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_code_page_of_a_delivered_code_says_sent(example_site):
    client = visitor()
    request_code_for(client, "13800138000")
    assert example_site.wait_for_reports(1, timeout=20), example_site.reports
    page = client.get("/verify/").content.decode()
    assert "A code was sent to 13800138000." in page
    assert "could not be delivered" not in page
    assert "data-sandbox-sms" in page


@pytest.mark.django_db(transaction=True)
def test_send_another_code_keeps_the_number(example_site):
    client = visitor()
    request_code_for(client, "13800138000")
    code_page = client.get("/verify/").content.decode()
    assert 'href="/">Send another code' in code_page
    form = client.get("/").content.decode()
    assert re.search(r'<input[^>]*name="number"[^>]*value="13800138000"', form), form


@pytest.mark.django_db(transaction=True)
def test_after_the_last_wrong_try_the_page_says_to_ask_for_a_new_code(example_site, settings):
    settings.ZHENZI = {**settings.ZHENZI, "CODE_MAX_TRIES": 3}
    client = visitor()
    request_code_for(client, "13800138000")
    for _try in range(2):
        page = client.post("/verify/", {"code": "000000"}).content.decode()
        assert "The code is wrong" in page
        assert "last try" not in page
        assert 'name="code"' in page
    last = client.post("/verify/", {"code": "000000"}).content.decode()
    assert "That was the last try for this code. Ask for a new code." in last
    assert 'name="code"' not in last
    assert "That was the last try" in client.get("/verify/").content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("language", "cooldown_wait", "hourly_wait"),
    [
        ("en", "Try again in 60 seconds.", "Try again in 60 minutes."),
        ("zh-hans", "请在 60 秒后重试", "请在 60 分钟后重试"),
    ],
)
def test_a_refused_request_shows_the_real_wait(
    example_site, settings, language, cooldown_wait, hourly_wait
):
    client = visitor(language)
    request_code_for(client, "13800138000")
    refused = client.post("/", {"number": "13800138000"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert cooldown_wait in refused.content.decode()

    settings.ZHENZI = {**settings.ZHENZI, "CODE_COOLDOWN": 1, "LIMIT_NUMBER_PER_HOUR": 1}
    request_code_for(client, "13900139000")
    refused = client.post("/", {"number": "13900139000"})
    assert refused.status_code == 429
    assert 3590 < int(refused["Retry-After"]) <= 3600
    assert hourly_wait in refused.content.decode()
    # The documentation's way to let a locked-out owner in at once (docs/verification.rst).
    RateCounter.objects.filter(subject="13900139000").delete()
    assert request_code_for(client, "13900139000").request["PATH_INFO"] == "/verify/"


# --- System checks -------------------------------------------------------------------------------


def test_check_passes_in_sandbox_mode(tmp_path):
    done = manage(tmp_path, "check", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_passes_with_credentials(tmp_path):
    done = manage(
        tmp_path,
        "check",
        "--fail-level",
        "WARNING",
        ZHENZI_APP_ID="my-app",
        ZHENZI_APP_SECRET="my-secret-value",
        ZHENZI_CALLBACK_TOKEN="a-callback-token-of-my-own",
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_names_a_missing_app_secret(tmp_path):
    done = manage(tmp_path, "check", ZHENZI_APP_ID="my-app")
    assert done.returncode != 0
    assert "django_zhenzi.E005" in done.stderr


def test_demo_help_describes_the_command_and_its_options(tmp_path):
    done = manage(tmp_path, "demo", "--help", LANGUAGE_CODE="en")
    assert done.returncode == 0, done.stderr
    assert "Set up and run the example project" in done.stdout
    for option in ("--host", "--port", "--admin-password", "--report-delay"):
        assert option in done.stdout


RUNNING_DEMO_PASSWORD = "the-running-demos-password"
CREATE_ADMIN = (
    "from django.contrib.auth import get_user_model; "
    f"get_user_model().objects.create_superuser('admin', password={RUNNING_DEMO_PASSWORD!r})"
)
ADMIN_PASSWORD_WORKS = (
    "from django.contrib.auth import authenticate; "
    f"print(authenticate(username='admin', password={RUNNING_DEMO_PASSWORD!r}) is not None)"
)


@pytest.mark.parametrize("busy", ["site", "sandbox"])
def test_a_second_demo_on_a_busy_port_stops_before_changing_anything(tmp_path, busy):
    """A demo started while one runs (on its ports) must not reset the running one's admin
    password, nor print a login that does not work: it stops first, naming what to change."""
    assert manage(tmp_path, "migrate", "--verbosity", "0").returncode == 0
    created = manage(tmp_path, "shell", "-c", CREATE_ADMIN)
    assert created.returncode == 0, created.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        port, sandbox_port = (
            (busy_port, free_port()) if busy == "site" else (free_port(), busy_port)
        )
        done = manage(
            tmp_path,
            "demo",
            "--port",
            str(port),
            "--admin-password",
            "a-new-password",
            SANDBOX_PORT=str(sandbox_port),
            LANGUAGE_CODE="en",
        )
    assert done.returncode == 1
    assert done.stdout == ""
    if busy == "site":
        assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
        assert "Choose another port with --port." in done.stderr
    else:
        assert f"cannot listen on http://127.0.0.1:{sandbox_port}" in done.stderr
        assert "Set SANDBOX_PORT to a free port." in done.stderr
    unchanged = manage(tmp_path, "shell", "-c", ADMIN_PASSWORD_WORKS)
    assert unchanged.stdout.splitlines()[-1] == "True", unchanged.stdout + unchanged.stderr


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


@dataclass
class DemoServer:
    """A running ``manage.py demo``: its site, sandbox, admin password and output file."""

    process: subprocess.Popen[bytes]
    url: str
    sandbox_url: str
    admin_password: str
    output: Path
    database: Path

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def running_demo(
    directory: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[DemoServer]:
    """Run the demo command as the README says, on free ports with a database in
    ``directory``; wait until it answers; stop it with SIGINT (as Ctrl-C does) afterwards."""
    port, sandbox_port = free_port(), free_port()
    database = directory / "demo.sqlite3"
    password = "demo-admin-password-1"
    output = directory / "demo-output.txt"
    environment = example_env(
        DATABASE_URL=f"sqlite:///{database}", SANDBOX_PORT=str(sandbox_port), **(extra_env or {})
    )
    command = [sys.executable, str(MANAGE), "demo", "--port", str(port)]
    command += ["--admin-password", password, "--report-delay", "0.5"]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=directory, env=environment, stdout=sink, stderr=subprocess.STDOUT
        )
    server = DemoServer(
        process,
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{sandbox_port}",
        password,
        output,
        database,
    )
    try:
        wait_until_answering(server)
        yield server
    finally:
        stop_demo(server)


def wait_until_answering(server: DemoServer) -> None:
    deadline = time.monotonic() + DEMO_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the demo exited with {server.process.returncode}:\n{server.log()}")
        try:
            with requests.get(server.url + "/", timeout=5) as response:
                if response.status_code == 200:
                    return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the demo did not answer within {DEMO_START_TIMEOUT} s:\n{server.log()}")


def stop_demo(server: DemoServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=DEMO_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=DEMO_STOP_TIMEOUT)


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def post_form(session: requests.Session, url: str, fields: dict[str, str]) -> requests.Response:
    """GET the page at ``url``, then POST ``fields`` with its CSRF token, as a browser would."""
    with session.get(url, timeout=10) as page:
        token = csrf_token(page.text)
    return session.post(
        url,
        data={"csrfmiddlewaretoken": token, **fields},
        headers={"Referer": url},
        timeout=10,
    )


def message_statuses(database: Path) -> list[tuple[str, str]]:
    """(number, status) of every message in the demo's database, read directly."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        rows = connection.execute("SELECT number, status FROM django_zhenzi_message").fetchall()
    return [(str(number), str(status)) for number, status in rows]


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
