"""The management commands, run with call_command against the sandbox and the real database."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command, load_command_class
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from django_zhenzi import send_sms, services
from django_zhenzi.management.commands import zhenzi_send
from django_zhenzi.models import (
    BalanceSnapshot,
    Message,
    RateCounter,
    RateLimit,
    RateLimitRefusal,
    Status,
    StatusReport,
    VerificationCode,
)
from django_zhenzi.sandbox import Sandbox
from tests.paths import REPO

TEXT = "【测试】您的订单已发货"
FIND_PATH = "/smslog/findSmsByMessageId.do"

pytestmark = pytest.mark.django_db


@pytest.fixture
def zhenzi(sandbox: Sandbox, settings) -> Sandbox:
    """The sandbox, with the app pointed at it."""
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox


def run(name: str, *args: str, **options) -> tuple[str, str]:
    """Run a command; return what it wrote to stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def run_failing(name: str, *args: str, **options) -> tuple[str, str, str]:
    """Run a command that must fail; return stdout, stderr and the CommandError's text."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue(), str(failure.value)


def accepted_numbers(sandbox: Sandbox) -> list[str]:
    return [message["number"] for message in sandbox.messages]


# --- zhenzi_send ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_send_to_arguments_sends_now(zhenzi):
    out, err = run("zhenzi_send", "13800138000", "+86 139-0013-9000", message=TEXT)

    messages = {m.number: m for m in Message.objects.all()}
    assert set(messages) == {"13800138000", "13900139000"}
    assert {m.status for m in messages.values()} == {Status.SENT}
    assert sorted(accepted_numbers(zhenzi)) == ["13800138000", "13900139000"]
    lines = out.splitlines()
    assert lines[0] == f"13800138000  {messages['13800138000'].message_id}  sent"
    assert lines[1] == f"13900139000  {messages['13900139000'].message_id}  sent"
    assert lines[-1].startswith("Sent 2, failed 0,")
    assert err == ""  # no progress bar: stderr is no terminal and verbosity is 1


@pytest.mark.django_db(transaction=True)
def test_send_reads_a_csv_file_with_header_bom_and_blank_lines(zhenzi, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(
        "phone,name\r\n 13800138001 ,张三\r\n\r\n13800138002,李四\r\n,\r\n13800138001,again\r\n",
        encoding="utf-8-sig",
    )

    out, _ = run("zhenzi_send", "13800138000", file=str(path), message=TEXT)

    assert sorted(accepted_numbers(zhenzi)) == ["13800138000", "13800138001", "13800138002"]
    assert f"13800138001  -  skipped ({path}:6): already listed ({path}:2)" in out
    assert out.splitlines()[-1] == (
        "Sent 3, failed 0, queued for a retry 0, unknown 0, invalid 0, repeated numbers skipped 1."
    )


@pytest.mark.django_db(transaction=True)
def test_send_reads_plain_lines_from_stdin(zhenzi):
    stdin = io.StringIO("\ufeff13800138000\n\n  13900139000  \n")

    run("zhenzi_send", file="-", stdin=stdin, message=TEXT)

    assert sorted(accepted_numbers(zhenzi)) == ["13800138000", "13900139000"]


@pytest.mark.django_db(transaction=True)
def test_send_lists_invalid_numbers_sends_the_others_and_fails(zhenzi, tmp_path):
    path = tmp_path / "numbers.txt"
    path.write_text("13800138000\n12345\n")

    out, _, error = run_failing("zhenzi_send", "call me", file=str(path), message=TEXT)

    assert accepted_numbers(zhenzi) == ["13800138000"]
    assert list(Message.objects.values_list("number", "status")) == [("13800138000", "sent")]
    assert "call me  -  invalid (argument 1): 'call me' is not a mainland China mobile" in out
    assert f"12345  -  invalid ({path}:2)" in out
    assert error == "2 of 3 numbers were not sent."


@pytest.mark.django_db(transaction=True)
def test_send_a_template_with_parameters(zhenzi):
    run("zhenzi_send", "13800138000", template="1001", param=["9988", "5分钟"])

    (sent,) = zhenzi.messages
    assert sent["templateId"] == "1001"
    assert sent["message"] == "【榛子沙箱】您的验证码是9988，5分钟内有效。"
    assert Message.objects.get().template_params == ["9988", "5分钟"]


@pytest.mark.django_db(transaction=True)
def test_send_reports_provider_failures_and_exits_non_zero(zhenzi):
    out, _, error = run_failing("zhenzi_send", "13800138000", template="999", param=[])

    message = Message.objects.get()
    assert message.status == Status.FAILED
    assert message.error_code == 117
    assert out.splitlines()[0].startswith(f"13800138000  {message.message_id}  failed: ")
    assert "Wrong templateId" in out
    assert error == "1 number was not sent."  # not "1 of 1 numbers were not sent."


def test_send_queue_prints_message_ids_and_sends_nothing(zhenzi):
    out, _ = run("zhenzi_send", "13800138000", "13900139000", message=TEXT, queue=True)

    rows = list(Message.objects.order_by("number"))
    assert [row.status for row in rows] == [Status.QUEUED, Status.QUEUED]
    for row in rows:
        assert f"{row.number}  {row.message_id}  queued" in out.splitlines()
    assert zhenzi.requests_total == 0
    assert out.splitlines()[-1] == "Queued 2, invalid 0, repeated numbers skipped 0."


def test_send_queue_takes_a_file_of_ten_thousand_numbers(zhenzi, tmp_path):
    path = tmp_path / "everyone.csv"
    path.write_text("mobile\n" + "".join(f"138{n:08d}\n" for n in range(10_000)))

    out, _ = run("zhenzi_send", file=str(path), message=TEXT, queue=True)

    assert Message.objects.filter(status=Status.QUEUED).count() == 10_000
    assert len(out.splitlines()) == 10_001
    assert zhenzi.requests_total == 0


@pytest.mark.django_db(transaction=True)
def test_send_in_chunks_with_a_progress_bar_on_verbosity_2(zhenzi, monkeypatch):
    monkeypatch.setattr(zhenzi_send, "CHUNK_SIZE", 2)
    numbers = [f"1380013800{n}" for n in range(5)]
    calls: list[int] = []
    real_send_sms = zhenzi_send.send_sms

    def counting_send_sms(chunk, *args, **kwargs):
        calls.append(len(chunk))
        return real_send_sms(chunk, *args, **kwargs)

    monkeypatch.setattr(zhenzi_send, "send_sms", counting_send_sms)

    out, err = run("zhenzi_send", *numbers, message=TEXT, verbosity=2)

    assert calls == [2, 2, 1]
    assert [line.split()[0] for line in out.splitlines()[:5]] == numbers
    assert Message.objects.filter(status=Status.SENT).count() == 5
    progress = err.splitlines()
    assert progress[0] == "[######........................] 1/5 20%"
    assert progress[-1] == "[##############################] 5/5 100%"
    assert len(progress) == 5


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_send_draws_the_progress_bar_in_place_on_a_terminal(zhenzi, monkeypatch):
    monkeypatch.setattr(zhenzi_send, "CHUNK_SIZE", 20)
    out, err = io.StringIO(), TerminalStream()
    numbers = [f"138{n:08d}" for n in range(60)]

    call_command("zhenzi_send", *numbers, message=TEXT, queue=True, stdout=out, stderr=err)

    drawn = err.getvalue()
    assert drawn.startswith("\r[##########....................] 20/60 33%")
    assert drawn.endswith("\r[##############################] 60/60 100%\n")
    assert len(out.getvalue().splitlines()) == 61


def test_no_progress_bar_for_short_runs_on_a_terminal(zhenzi):
    err = TerminalStream()

    call_command(
        "zhenzi_send", "13800138000", message=TEXT, queue=True, stdout=io.StringIO(), stderr=err
    )

    assert err.getvalue() == ""


def test_dry_run_sends_and_stores_nothing(zhenzi):
    out, _ = run("zhenzi_send", "13800138000", "13900139000", message=TEXT, dry_run=True)

    assert zhenzi.messages == []
    assert zhenzi.requests_total == 0
    assert Message.objects.count() == 0
    assert out.splitlines() == [
        f"Content: {TEXT}",
        "13800138000  -  would send",
        "13900139000  -  would send",
        "Dry run: 2 messages to send, 0 invalid numbers, 0 repeated numbers skipped. "
        "Nothing was sent or stored.",
    ]


def test_dry_run_with_invalid_numbers_fails(zhenzi):
    out, _, error = run_failing(
        "zhenzi_send", "13800138000", "1234", template="1001", param=["1", "2"], dry_run=True
    )

    assert "Content: template 1001 with parameters ['1', '2']" in out
    assert "1234  -  invalid (argument 2)" in out
    assert out.splitlines()[-1] == (
        "Dry run: 1 message to send, 1 invalid number, 0 repeated numbers skipped. "
        "Nothing was sent or stored."
    )
    assert error == "1 number is invalid."
    assert zhenzi.requests_total == 0
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"message": ""}, "The message is empty."),
        ({"message": "x" * 1001}, "The message is 1001 characters long"),
        ({"message": TEXT, "param": ["1"]}, "Template parameters need a template id."),
        ({"template": "has space"}, "is not a template id"),
    ],
)
def test_send_refuses_bad_content_before_storing_anything(zhenzi, options, expected):
    _, _, error = run_failing("zhenzi_send", "13800138000", **options)

    assert expected in error
    assert Message.objects.count() == 0
    assert zhenzi.requests_total == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["13800138000"], "one of the arguments --message --template is required"),
        (["13800138000", "--message", "x", "--template", "1"], "not allowed with argument"),
        (["--message", "x"], "No phone number given"),
    ],
)
def test_send_refuses_bad_arguments(zhenzi, args, expected):
    _, _, error = run_failing("zhenzi_send", *args)

    assert expected in error
    assert Message.objects.count() == 0


def test_send_refuses_unreadable_files(zhenzi, tmp_path):
    missing = tmp_path / "missing.csv"
    _, _, error = run_failing("zhenzi_send", file=str(missing), message=TEXT)
    assert error == f"Cannot read {missing}: No such file or directory"

    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("手机号\n13800138000\n".encode("gbk"))
    _, _, error = run_failing("zhenzi_send", file=str(gbk), message=TEXT)
    assert error.startswith(f"{gbk} is not UTF-8 text")

    huge = tmp_path / "huge.csv"
    huge.write_text("13800138000," + "x" * 200_000 + "\n")
    _, _, error = run_failing("zhenzi_send", file=str(huge), message=TEXT)
    assert error.startswith(f"{huge} is not a CSV or text file: field larger than field limit")
    assert Message.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_send_with_wrong_credentials_stops_and_explains(zhenzi, settings, monkeypatch):
    secret = "not-the-right-secret-42"
    settings.ZHENZI = {**settings.ZHENZI, "APP_SECRET": secret}
    monkeypatch.setattr(zhenzi_send, "CHUNK_SIZE", 2)
    numbers = [f"1380013800{n}" for n in range(5)]

    out, err, error = run_failing("zhenzi_send", *numbers, message=TEXT)

    assert error.startswith(
        "Stopped at the first refusal of the account: Zhenzi error 110 on /sms/send.do: "
        "Wrong appSecret"
    )
    assert "Check ZHENZI['APP_SECRET']" in error
    assert error.endswith("3 numbers not tried, nothing stored for them.")
    assert "Sent 0, failed 0, queued for a retry 2" in out  # the summary is printed first
    # The first chunk only, both left queued for a worker; one request, not one per message.
    assert set(Message.objects.values_list("status", "attempts")) == {(Status.QUEUED, 0)}
    assert Message.objects.count() == 2
    assert zhenzi.requests_total == 1
    assert secret not in out + err + error


@pytest.mark.django_db(transaction=True)
def test_send_counts_in_singular_and_plural(zhenzi, settings, monkeypatch):
    settings.ZHENZI = {**settings.ZHENZI, "APP_SECRET": "not-the-right-secret-42"}
    monkeypatch.setattr(zhenzi_send, "CHUNK_SIZE", 2)

    _, _, error = run_failing(
        "zhenzi_send", "13800138000", "13800138001", "13800138002", message=TEXT
    )
    assert error.endswith("1 number not tried, nothing stored for it.")

    settings.ZHENZI = {**settings.ZHENZI, "APP_SECRET": "test-secret-value"}
    _, _, error = run_failing("zhenzi_send", "13800138000", "1380013", message=TEXT)
    assert error == "1 of 2 numbers was not sent."
    _, _, error = run_failing("zhenzi_send", "1380013", "12345", message=TEXT, queue=True)
    assert error == "2 numbers were not queued."


@pytest.mark.django_db
@pytest.mark.parametrize(
    "command",
    [
        ["zhenzi_balance"],
        ["zhenzi_status", "--sync"],
        ["zhenzi_status", "0123456789abcdef"],
        ["zhenzi_send_queued"],
    ],
)
def test_every_command_says_the_configuration_is_wrong(zhenzi, settings, command):
    settings.ZHENZI = {**settings.ZHENZI, "APP_ID": ""}
    _, _, error = run_failing(*command)
    assert error.startswith("The SMS configuration is wrong: settings.ZHENZI['APP_ID'] is not set")
    assert zhenzi.requests_total == 0


@pytest.mark.django_db(transaction=True)
def test_send_with_missing_configuration_stores_nothing(zhenzi, settings):
    settings.ZHENZI = {**settings.ZHENZI, "APP_ID": ""}

    _, _, error = run_failing("zhenzi_send", "13800138000", message=TEXT)

    assert error.startswith("The SMS configuration is wrong: settings.ZHENZI['APP_ID'] is not set")
    assert Message.objects.count() == 0
    assert zhenzi.requests_total == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zhenzi_send", "Send an SMS (a text, or a console template"),
        ("zhenzi_send_queued", "Send the messages that are due"),
        ("zhenzi_balance", "Print how many SMS are left"),
        ("zhenzi_status", "Show messages by messageId"),
        ("zhenzi_cleanup", "Delete messages created more than --days days ago"),
    ],
)
def test_help_texts_are_translated_strings(name, expected):
    parser = load_command_class("django_zhenzi", name).create_parser("manage.py", name)

    with translation.override("en"):
        text = " ".join(parser.format_help().split())

    assert expected in text


# --- zhenzi_send_queued --------------------------------------------------------------------------


def test_send_queued_respects_the_limit(zhenzi):
    send_sms([f"1380013800{n}" for n in range(5)], TEXT, queue=True)

    out, _ = run("zhenzi_send_queued", limit=2)

    assert len(zhenzi.messages) == 2
    assert Message.objects.filter(status=Status.SENT).count() == 2
    assert Message.objects.filter(status=Status.QUEUED).count() == 3
    assert out.startswith("sent 2, failed 0,")


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def database_url_for_subprocess() -> str:
    """DATABASE_URL of the test database this test runs on."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


@pytest.mark.django_db(transaction=True)
def test_loop_worker_sends_while_running_and_stops_on_sigterm(sandbox, tmp_path):
    # tests.settings, pointed at this test's sandbox.
    (tmp_path / "worker_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n"
        f"ZHENZI = {{**ZHENZI, 'API_URL': {sandbox.url!r}}}  # noqa: F405\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "DATABASE_URL": database_url_for_subprocess(),
    }
    command = [
        sys.executable,
        *("-m", "django", "zhenzi_send_queued", "--loop", "--idle-wait", "0.1"),
        "--settings=worker_settings",
    ]
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        worker = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=tmp_path)

    def sent(message: Message) -> bool:
        return Message.objects.filter(pk=message.pk, status=Status.SENT).exists()

    try:
        first = send_sms("13800138000", TEXT, queue=True)
        assert wait_until(lambda: sent(first), timeout=30), (tmp_path / "err").read_text()
        second = send_sms("13900139000", TEXT, queue=True)  # queued while the worker runs
        assert wait_until(lambda: sent(second), timeout=10)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert accepted_numbers(sandbox) == ["13800138000", "13900139000"]
    assert (tmp_path / "out").read_text().startswith("sent 2, failed 0,")
    assert "Stopping: finishing the messages in flight..." in (tmp_path / "err").read_text()


# --- zhenzi_balance ------------------------------------------------------------------------------


def test_balance_prints_and_records_it(zhenzi):
    zhenzi.balance = 4321

    out, _ = run("zhenzi_balance")

    assert out == "Balance: 4321 SMS left.\n"
    assert BalanceSnapshot.objects.get().balance == 4321


def test_balance_above_32_bits_is_printed_and_recorded(zhenzi):
    zhenzi.balance = 2**31 + 7  # an IntegerField overflows on PostgreSQL

    out, _ = run("zhenzi_balance")

    assert out == f"Balance: {2**31 + 7} SMS left.\n"
    assert BalanceSnapshot.objects.get().balance == 2**31 + 7


def test_balance_on_a_backend_without_account(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": "django_zhenzi.backends.dummy.SmsBackend"}

    _, _, error = run_failing("zhenzi_balance")

    assert error.startswith("The configured backend has no account balance:")
    assert BalanceSnapshot.objects.count() == 0


def test_balance_with_wrong_secret_explains_without_the_secret(zhenzi, settings):
    secret = "not-the-right-secret-42"
    settings.ZHENZI = {**settings.ZHENZI, "APP_SECRET": secret}

    out, err, error = run_failing("zhenzi_balance")

    assert "Zhenzi error 110 on /account/balance.do: Wrong appSecret" in error
    assert "Check ZHENZI['APP_SECRET']" in error  # the hint
    assert secret not in out + err + error
    assert BalanceSnapshot.objects.count() == 0


def test_balance_when_the_provider_cannot_be_reached(settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": "http://127.0.0.1:9"}

    _, _, error = run_failing("zhenzi_balance")

    assert error.startswith("Could not read the balance: Could not reach http://127.0.0.1:9")


# --- zhenzi_status -------------------------------------------------------------------------------


def sent_message(number: str = "13800138000") -> Message:
    message = send_sms(number, TEXT, queue=True)
    services.run_workers()
    message.refresh_from_db()
    assert message.status == Status.SENT
    return message


def test_status_shows_local_and_provider_state(zhenzi):
    zhenzi.report_delay = 60  # the provider's record stays "sending"
    message = sent_message()

    out, _ = run("zhenzi_status", message.message_id)

    lines = out.splitlines()
    assert lines[0] == f"{message.message_id}: to 13800138000, sent, 1 attempt"
    assert re.fullmatch(r"  created 20\S+ \S+ CST, sent 20\S+ \S+ CST", lines[1])  # Asia/Shanghai
    assert lines[2].startswith("  provider: sending, to 13800138000, created 20")
    assert lines[2].endswith("(China time)")


@pytest.mark.parametrize(
    ("time_zone", "zone"), [("UTC", "UTC"), ("Asia/Dubai", "+04:00"), ("Asia/Kolkata", "IST")]
)
def test_status_labels_local_times_with_their_zone(zhenzi, settings, time_zone, zone):
    settings.TIME_ZONE = time_zone
    message = sent_message()

    out, _ = run("zhenzi_status", message.message_id, local=True)

    created = re.escape(f"{timezone.localtime(message.created_at):%Y-%m-%d %H:%M:%S}")
    assert re.match(rf"  created {created} {re.escape(zone)}, sent 20", out.splitlines()[1])


def test_status_local_does_not_ask_the_provider(zhenzi):
    message = send_sms("13800138000", TEXT, queue=True)
    zhenzi.fail_next("code1000")
    services.run_workers()

    out, _ = run("zhenzi_status", message.message_id, local=True)

    assert out.splitlines()[0] == f"{message.message_id}: to 13800138000, queued, 1 attempt"
    assert "  last error: Zhenzi error 1000 on /sms/send.do" in out
    assert "  provider:" not in out
    assert zhenzi.requests_by_endpoint[FIND_PATH] == 0


def test_status_says_the_last_error_in_the_sites_language(zhenzi, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    message = send_sms("13800138000", TEXT, queue=True)
    zhenzi.fail_next("code1000")
    services.run_workers()

    out, _ = run("zhenzi_status", message.message_id, local=True)

    assert "榛子云返回错误 1000（/sms/send.do）：系统未知错误" in out
    assert "Zhenzi error 1000" not in out


def test_status_of_unknown_ids_fails(zhenzi):
    message = sent_message()

    out, _, error = run_failing("zhenzi_status", message.message_id, "0123abcd")

    assert "0123abcd: no such message here." in out.splitlines()
    assert "  provider: no record of this messageId." in out.splitlines()
    assert out.splitlines()[0].startswith(f"{message.message_id}: to 13800138000, sent")
    assert error == "1 of 2 messageIds is not stored here."


def test_status_when_the_provider_fails(zhenzi):
    message = sent_message()
    zhenzi.fail_next("code1000")

    out, _, error = run_failing("zhenzi_status", message.message_id)

    assert "  provider: could not ask: Zhenzi error 1000" in out
    assert error == "The provider could not be asked about 1 messageId."


def test_status_sync_records_final_statuses(zhenzi):
    zhenzi.report_delay = 0  # the sandbox's records are final at once
    delivered = sent_message("13800138000")
    undelivered = sent_message("13800138004")  # the sandbox fails numbers ending in 4

    out, _ = run("zhenzi_status", sync=True, older_than=0)

    assert out == "2 messages got a final status from the provider.\n"
    delivered.refresh_from_db()
    undelivered.refresh_from_db()
    assert (delivered.status, delivered.provider_status) == (Status.DELIVERED, "success")
    assert (undelivered.status, undelivered.provider_status) == (Status.UNDELIVERED, "fail")
    assert set(StatusReport.objects.values_list("source", flat=True)) == {"poll"}


def test_status_sync_waits_for_older_than_and_limit(zhenzi):
    zhenzi.report_delay = 0
    sent_message("13800138000")
    sent_message("13900139000")

    assert run("zhenzi_status", "--sync")[0].startswith("0 messages")  # STATUS_SYNC_AFTER: 600 s
    assert run("zhenzi_status", "--sync", "--older-than", "0", "--limit", "1")[0].startswith(
        "1 message got"
    )
    assert Message.objects.filter(status=Status.SENT).count() == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "Give one or more messageIds, or --sync."),
        (["abc", "--sync"], "--sync takes no messageIds and no --local."),
        (["abc", "--older-than", "5"], "--older-than only goes with --sync."),
        (["--sync", "--limit", "0"], "'0' is not a whole number of at least 1."),
        (["--sync", "--older-than", "-1"], "'-1' is not a number of seconds (0 or more)."),
    ],
)
def test_status_refuses_bad_arguments(args, expected):
    _, _, error = run_failing("zhenzi_status", *args)

    assert expected in error


# --- zhenzi_cleanup ------------------------------------------------------------------------------


@pytest.fixture
def aged_rows() -> dict[str, list[Message]]:
    """Messages of every status, 40 days old and 1 day old, with reports and snapshots."""
    moment = services.clock.now()
    rows: dict[str, list[Message]] = {"old": [], "recent": []}
    for age, days in (("old", 40), ("recent", 1)):
        created = moment - timedelta(days=days)
        for status in Status.values:
            message = Message.objects.create(
                number="13800138000", text=TEXT, status=status, created_at=created
            )
            rows[age].append(message)
            StatusReport.objects.create(
                message=message, reported_message_id=message.message_id, received_at=created
            )
        StatusReport.objects.create(reported_message_id=f"orphan-{age}", received_at=created)
        BalanceSnapshot.objects.create(balance=100, recorded_at=created)
    return rows


KEPT_STATUSES = {Status.QUEUED, Status.SENDING, Status.UNKNOWN}


def test_cleanup_dry_run_counts_and_deletes_nothing(aged_rows):
    out, _ = run("zhenzi_cleanup", days=30, dry_run=True)

    assert out == (
        "Would delete 4 messages, 4 status reports of theirs, 1 orphan status report, "
        "1 balance snapshot, 0 verification codes and 0 rate-limit rows.\n"
    )
    assert Message.objects.count() == 14
    assert StatusReport.objects.count() == 16
    assert BalanceSnapshot.objects.count() == 2


def test_cleanup_deletes_old_settled_rows_only(aged_rows):
    out, _ = run("zhenzi_cleanup", "--days", "30")

    assert out == (
        "Deleted 4 messages, 4 status reports of theirs, 1 orphan status report, "
        "1 balance snapshot, 0 verification codes and 0 rate-limit rows.\n"
    )
    kept = set(Message.objects.values_list("pk", flat=True))
    expected = {m.pk for m in aged_rows["recent"]} | {
        m.pk for m in aged_rows["old"] if m.status in KEPT_STATUSES
    }
    assert kept == expected
    assert set(
        StatusReport.objects.filter(message=None).values_list("reported_message_id", flat=True)
    ) == {"orphan-recent"}
    assert StatusReport.objects.filter(message__isnull=False).count() == len(expected)
    assert BalanceSnapshot.objects.count() == 1


def test_cleanup_deletes_in_chunks(aged_rows):
    with CaptureQueriesContext(connection) as queries:
        result = services.delete_history_older_than(30, chunk_size=3)

    assert (result.messages, result.reports) == (4, 4)
    message_deletes = [
        query["sql"]
        for query in queries.captured_queries
        # Quoted "like this", or `like this` on MySQL and MariaDB.
        if query["sql"].startswith(
            ('DELETE FROM "django_zhenzi_message"', "DELETE FROM `django_zhenzi_message`")
        )
    ]
    assert len(message_deletes) == 2  # 3 ids, then 1


def test_cleanup_deletes_old_codes_and_rate_limit_rows():
    moment = services.clock.now()
    old, recent = moment - timedelta(days=31), moment - timedelta(days=1)
    for when in (old, recent):
        VerificationCode.objects.create(
            number="13800138000", purpose="login", code_hash="x", expires_at=when
        )
        RateCounter.objects.create(
            limit=RateLimit.SITE_DAY, subject=str(when), window_start=when, count=3
        )
        RateLimitRefusal.objects.create(
            limit=RateLimit.SITE_DAY, subject=str(when), hour=when, count=1, last_refused_at=when
        )

    result = services.delete_history_older_than(30)

    assert (result.verification_codes, result.rate_limit_rows) == (1, 2)
    assert list(VerificationCode.objects.values_list("expires_at", flat=True)) == [recent]
    assert list(RateCounter.objects.values_list("window_start", flat=True)) == [recent]
    assert list(RateLimitRefusal.objects.values_list("hour", flat=True)) == [recent]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "the following arguments are required: --days"),
        (["--days", "0"], "'0' is not a whole number of at least 1."),
        (["--days", "soon"], "'soon' is not a whole number of at least 1."),
    ],
)
def test_cleanup_refuses_bad_days(aged_rows, args, expected):
    _, _, error = run_failing("zhenzi_cleanup", *args)

    assert expected in error
    assert Message.objects.count() == 14


def test_send_stops_cleanly_when_an_abuse_limit_refuses(sandbox, settings):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "LIMIT_ALL_SENDS": True,
        "LIMIT_SITE_PER_MINUTE": 1,
    }
    _, _, error = run_failing("zhenzi_send", "13800138000", "13900139000", message="【测试】通知")

    assert "abuse limit refused" in error
    assert Message.objects.count() == 0


@pytest.mark.parametrize("option", ["--idle-wait", "--account-wait"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_worker_wait_must_be_seconds_above_zero(option, value):
    """A wait of 0 (or less, or NaN) would make a looping worker spin on the database or hammer
    the provider's balance endpoint while paused."""
    with pytest.raises(CommandError, match="is not a number of seconds above 0"):
        call_command("zhenzi_send_queued", option, value)
