"""The sandbox's options, its command line, and the zhenzi_sandbox management command."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_zhenzi import send_sms
from django_zhenzi.management.commands.zhenzi_sandbox import (
    Command,
    api_url_warning,
    callback_url_from_settings,
    defaults_from_settings,
)
from django_zhenzi.models import Status
from django_zhenzi.sandbox import FAULT_KINDS, Sandbox, add_arguments, sandbox_from_options
from django_zhenzi.sandbox.cli import main
from tests.paths import REPO
from tests.sandbox.clients import (
    APP_SECRET,
    BALANCE,
    CREDENTIALS,
    TEXT,
    official_post,
)

pytestmark = pytest.mark.slow


# --- Options, the command line and the management command ---


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fault_rates": {"slow": 0.1}}, "unknown fault kind 'slow'"),
        ({"fault_rates": {"cut": 1.5}}, "between 0 and 1"),
        ({"fault_rates": {"cut": -0.1}}, "between 0 and 1"),
        ({"fault_rates": {"cut": 0.6, "http500": 0.6}}, "add up to more than 1"),
        ({"report_format": "xml"}, "report_format must be one of form, json, json-array"),
        ({"latency": -1}, "latency must be a number >= 0"),
        ({"hang_seconds": -1}, "hang_seconds must be a number >= 0"),
        ({"late_seconds": -1}, "late_seconds must be a number >= 0"),
        ({"late_seconds": "5"}, "late_seconds must be a number >= 0"),
        ({"report_delay": -0.5}, "report_delay must be a number >= 0"),
        ({"report_retry_delay": -1, "callback_url": "http://x/"}, "report_retry_delay must be"),
        ({"daily_cap": -1}, "daily_cap must be an integer >= 0"),
        ({"balance": -5}, "balance must be an integer >= 0"),
        ({"undeliverable_suffixes": "4a"}, "undeliverable_suffixes must be digits"),
        ({"port": 70000}, "port must be an integer in 0..65535"),
        ({"ip_whitelist": ["not-an-ip"]}, "does not appear to be an IPv4 or IPv6 address"),
        ({"ip_whitelist": "127.0.0.1"}, "not one string"),
        ({"callback_url": "ftp://example.com/"}, "callback_url must be an http(s) URL"),
        ({"templates": {"1": "{2}"}}, "placeholders must be {1}..{n}"),
        ({"app_secret": ""}, "must not be empty"),
    ],
)
def test_invalid_options_are_value_errors(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Sandbox(**options)


def test_fault_setters_validate(sandbox):
    with pytest.raises(ValueError, match="unknown fault kind 'slow'"):
        sandbox.fail_next("slow")
    with pytest.raises(ValueError, match="integer >= 1"):
        sandbox.fail_next("cut", 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        sandbox.set_faults(latency=0.5, rates={"cut": 2})
    assert sandbox.faults == {"latency": 0.0, "rates": {}, "next": []}
    sandbox.set_faults(rates={kind: 0.1 for kind in FAULT_KINDS})
    sandbox.set_faults(latency=0.01)
    assert sandbox.faults["rates"] == {kind: 0.1 for kind in FAULT_KINDS}
    with pytest.raises(ValueError, match="late_seconds must be a number >= 0"):
        sandbox.late_seconds = -1
    assert sandbox.late_seconds == 5.0
    sandbox.reset()
    assert sandbox.faults == {"latency": 0.0, "rates": {}, "next": []}


def test_a_sandbox_starts_once_and_stops_idempotently():
    sandbox = Sandbox()
    with pytest.raises(RuntimeError):
        sandbox.url  # noqa: B018
    sandbox.start()
    with pytest.raises(RuntimeError):
        sandbox.start()
    sandbox.stop()
    sandbox.stop()


# Command line and management command


def test_options_build_the_sandbox():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = vars(
        parser.parse_args(
            ["--port", "0", "--fault", "cut=0.1", "--fault", "http500=0.2", "--ip-whitelist",
             "127.0.0.1", "--daily-cap", "3", "--report-format", "json", "--disabled",
             "--fault", "late=0.05", "--late-seconds", "2.5", "--hang-seconds", "4"]
        )
    )  # fmt: skip
    sandbox = sandbox_from_options(options)
    assert sandbox.faults["rates"] == {"http500": 0.2, "cut": 0.1, "late": 0.05}
    assert (sandbox.late_seconds, sandbox.hang_seconds) == (2.5, 4)
    assert (sandbox.port, sandbox.daily_cap, sandbox.report_format) == (0, 3, "json")
    assert (sandbox.ip_whitelist, sandbox.disabled) == (frozenset({"127.0.0.1"}), True)
    assert (sandbox.app_id, sandbox.app_secret, sandbox.balance) == (
        "sandbox",
        "sandbox-secret",
        10000,
    )
    assert sandbox_from_options({}).port == 8086
    assert sandbox_from_options({}).late_seconds == 5.0


@pytest.mark.parametrize(
    "argv", [["--fault", "slow=0.1"], ["--fault", "cut"], ["--fault", "cut=2"], ["--latency", "-1"]]
)
def test_cli_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--port", "0", *argv])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def serve_in_subprocess(
    command: list[str],
    check: Callable[[str, str], None],
    expected_err: str = "",
    expected_out: str = "",
    **env: str,
) -> None:
    """Start a sandbox process, run ``check(first_line, url)``, then SIGTERM it: it exits 0 and
    wrote ``expected_err`` (a regular expression) to stderr."""
    with subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            first_line = process.stdout.readline()
            url = re.search(r"serving on (http://\S+)", first_line)
            assert url, (first_line, process.stderr.read() if process.poll() is not None else "")
            check(first_line, url.group(1))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        rest, err = process.stdout.read(), process.stderr.read()
        assert process.returncode == 0, err
        assert re.fullmatch(expected_err, err), err
        assert rest.endswith("Stop with Ctrl-C or SIGTERM.\n")
        assert expected_out in first_line + rest


def test_cli_serves_on_a_free_port_until_sigterm():
    def check(first_line: str, url: str) -> None:
        assert urlsplit(url).port not in (None, 0)
        assert "appId=cli-app  appSecret=cli-secret" in first_line
        answer = official_post(url + BALANCE, {"appId": "cli-app", "appSecret": "cli-secret"})
        assert answer == {"code": 0, "data": 10000}

    command = [sys.executable, "-m", "django_zhenzi.sandbox", "--port", "0"]
    serve_in_subprocess([*command, "--app-id", "cli-app", "--app-secret", "cli-secret"], check)


API_URL_WARNING = (
    r"ZHENZI\['API_URL'\] is http://127\.0\.0\.1:9, not this sandbox: the site sends through "
    r"that server\. Set it to http://127\.0\.0\.1:\d+ to use the sandbox\.\n"
)


def test_management_command_uses_settings_and_hides_their_secret():
    def check(first_line: str, url: str) -> None:
        assert "appId=test-app" in first_line
        assert APP_SECRET not in first_line
        assert official_post(url + BALANCE, CREDENTIALS) == {"code": 0, "data": 10000}

    command = [sys.executable, "-m", "django", "zhenzi_sandbox", "--port", "0"]
    # tests.settings' API_URL is http://127.0.0.1:9, not the port the sandbox takes: it says so.
    serve_in_subprocess(command, check, API_URL_WARNING, DJANGO_SETTINGS_MODULE="tests.settings")


@pytest.mark.django_db(transaction=True)
def test_management_command_reports_to_the_site_by_its_callback_token(live_server, settings):
    """Without --callback-url, reports go to --site-url + the callback URL of CALLBACK_TOKEN,
    and the message sent through the sandbox ends up delivered; the token is not printed."""

    def check(first_line: str, url: str) -> None:
        settings.ZHENZI = {**settings.ZHENZI, "API_URL": url}
        message = send_sms("13800138000", TEXT)
        assert message.status == Status.SENT
        deadline = time.monotonic() + 10
        while message.status == Status.SENT and time.monotonic() < deadline:
            time.sleep(0.05)
            message.refresh_from_db()
        assert message.status == Status.DELIVERED

    command = [sys.executable, "-m", "django", "zhenzi_sandbox", "--port", "0"]
    command += ["--site-url", live_server.url, "--report-delay", "0.05"]
    serve_in_subprocess(
        command,
        check,
        API_URL_WARNING,
        DJANGO_SETTINGS_MODULE="tests.settings",
        expected_out=f"to {live_server.url}/zhenzi/callback/<CALLBACK_TOKEN>/, ",
    )


def test_management_command_help_hides_the_secret():
    with override_settings(ZHENZI={"APP_ID": "help-app", "APP_SECRET": "s3cretvalue42"}):
        parser = Command().create_parser("manage.py", "zhenzi_sandbox")
        text = " ".join(parser.format_help().split())
    assert "s3cretvalue42" not in text
    assert "the appSecret clients must send (default: ZHENZI['APP_SECRET'])" in text
    assert "(default: help-app)" in text
    assert "--site-url + the callback path of ZHENZI['CALLBACK_TOKEN']" in text


def test_management_command_callback_url_comes_from_the_token():
    assert callback_url_from_settings("http://127.0.0.1:8000/") == (
        "http://127.0.0.1:8000/zhenzi/callback/test-callback-token-0123456789/",
        "",
    )
    with override_settings(ZHENZI={"CALLBACK_TOKEN": ["first-token-0123456789", "second-tok"]}):
        assert callback_url_from_settings("http://site.test:8001")[0] == (
            "http://site.test:8001/zhenzi/callback/first-token-0123456789/"
        )
    with override_settings(ZHENZI={}):
        url, problem = callback_url_from_settings("http://127.0.0.1:8000")
    assert url is None
    assert "no ZHENZI['CALLBACK_TOKEN']" in problem
    with override_settings(
        ROOT_URLCONF="django_zhenzi.verification.urls"
    ):  # a site without django_zhenzi.urls
        url, problem = callback_url_from_settings("http://127.0.0.1:8000")
    assert url is None
    assert "does not include django_zhenzi.urls" in problem


@pytest.mark.parametrize(
    ("api_url", "sandbox_url", "warns"),
    [
        ("http://127.0.0.1:8086", "http://127.0.0.1:8086", False),
        ("http://localhost:8086/", "http://127.0.0.1:8086", False),
        ("http://127.0.0.1", "http://127.0.0.1:80", False),
        ("http://127.0.0.1:8087", "http://127.0.0.1:8086", True),
        ("https://sms_developer.zhenzikj.com", "http://127.0.0.1:8086", True),
        ("http://10.0.0.5:8086", "http://127.0.0.1:8086", True),
    ],
)
def test_management_command_warns_when_api_url_is_not_the_sandbox(api_url, sandbox_url, warns):
    with override_settings(ZHENZI={"API_URL": api_url}):
        warning = api_url_warning(sandbox_url)
    assert bool(warning) is warns
    if warns:
        assert f"ZHENZI['API_URL'] is {api_url}, not this sandbox" in warning
        assert f"Set it to {sandbox_url} to use the sandbox." in warning


@pytest.mark.parametrize(
    ("zhenzi", "expected"),
    [
        (
            {"APP_ID": "a", "APP_SECRET": "s", "API_URL": "http://127.0.0.1:9100"},
            {"app_id": "a", "app_secret": "s", "host": "127.0.0.1", "port": 9100},
        ),
        ({"API_URL": "http://localhost"}, {"host": "localhost", "port": 80}),
        ({"API_URL": "http://[::1]:9000/"}, {"host": "::1", "port": 9000}),
        ({"API_URL": "http://10.0.0.5:9000"}, {}),
        ({"APP_ID": "a", "API_URL": "https://127.0.0.1:9000"}, {"app_id": "a"}),
        ({"API_URL": "https://sms_developer.zhenzikj.com"}, {}),
        ({"API_URL": "http://127.0.0.1:notaport"}, {}),
        ({}, {}),
    ],
)
def test_management_command_defaults_come_from_settings(zhenzi, expected):
    with override_settings(ZHENZI=zhenzi):
        assert defaults_from_settings() == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--fault", "cut=2"], "between 0 and 1"), (["--report-format", "xml"], "invalid choice")],
)
def test_management_command_rejects_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("zhenzi_sandbox", "--port", "0", *args)
