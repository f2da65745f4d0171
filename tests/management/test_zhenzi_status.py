"""zhenzi_status: showing messages and --sync."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from django_zhenzi import send_sms, services
from django_zhenzi.models import (
    Message,
    Status,
    StatusReport,
)
from tests.management.run_commands import (
    FIND_PATH,
    TEXT,
    run,
    run_failing,
)

pytestmark = pytest.mark.django_db


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
