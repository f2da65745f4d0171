"""The example project's system checks."""

from __future__ import annotations

import socket

import pytest

from tests.project.example import (
    free_port,
    manage,
)

pytestmark = pytest.mark.slow


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
