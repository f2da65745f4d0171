"""Running the example project in tests: its environment, its settings, its manage.py and its
demo server."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.paths import REPO

#: Every test here starts a sandbox server or a process: the full suite only.


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


#: More than the demo's own waits when it stops (its Celery worker's warm shutdown, 20 s; its
#: worker thread, 10 s): past it, the demo and every process it started are killed.
DEMO_STOP_TIMEOUT = 45.0


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
    environment["PYTHONFAULTHANDLER"] = "1"  # a hung demo's stacks, see stop_demo
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
            command,
            cwd=directory,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, for stop_demo to kill it whole
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
    """SIGINT, as Ctrl-C; SIGTERM (which the demo takes the same way) when this process ignores
    SIGINT, as a shell's background job does: the demo inherits that, and SIGINT would do
    nothing. A demo that has not stopped within DEMO_STOP_TIMEOUT is killed with every process
    it started (a Celery worker left running would take later tests' tasks from the shared
    broker)."""
    if server.process.poll() is None:
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        server.process.send_signal(signal.SIGTERM if ignored else signal.SIGINT)
        try:
            server.process.wait(timeout=DEMO_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # SIGABRT first: faulthandler (PYTHONFAULTHANDLER) writes every thread's stack
            # into the demo's log, which the failing test shows.
            server.process.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):  # what it started must not outlive it
        os.killpg(server.process.pid, signal.SIGKILL)
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

    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        rows = connection.execute("SELECT number, status FROM django_zhenzi_message").fetchall()
    return [(str(number), str(status)) for number, status in rows]
