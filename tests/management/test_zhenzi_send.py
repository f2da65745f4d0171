"""zhenzi_send: numbers from arguments and files, now or queued, and what it says."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command, load_command_class
from django.utils import translation

from django_zhenzi.management.commands import zhenzi_send
from django_zhenzi.models import (
    Message,
    Status,
)
from tests.management.run_commands import (
    TEXT,
    accepted_numbers,
    run,
    run_failing,
)

pytestmark = pytest.mark.django_db


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
