"""zhenzi_cleanup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_zhenzi import services
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
from tests.management.run_commands import (
    TEXT,
    run,
    run_failing,
)

pytestmark = pytest.mark.django_db


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
