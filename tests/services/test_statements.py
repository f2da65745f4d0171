"""One report per request runs statements written once per connection (``services.statements``)
instead of the ORM's: the same rows must come out, and signal receivers must get the same whole
message, whichever path ran. ``orm`` below is the ORM's path, taken for databases the module does
not write for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_zhenzi import services, signals
from django_zhenzi.models import Message, StatusReport
from django_zhenzi.services import statements
from django_zhenzi.status import MaybeSent, Status

pytestmark = pytest.mark.django_db

TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT", "ROLLBACK")


@pytest.fixture(params=["written", "orm"])
def path(request, monkeypatch) -> str:
    if request.param == "orm":
        monkeypatch.setattr(statements, "VENDORS", frozenset())
    return request.param


def rich_message(clock, **fields) -> Message:
    """A message with a value in every kind of column: JSON, dates, IP, booleans, nulls."""
    values = {
        "number": "13800138000",
        "text": "【测试】您的订单已发货",
        "template_id": "tpl-1",
        "template_params": ["1234", 5, {"nested": True}],
        "client_ip": "203.0.113.7",
        "status": Status.SENT,
        "attempts": 2,
        "claimed_at": clock.moment - timedelta(seconds=30),
        "claim_token": "",
        "error_code": 1000,
        "error_text": "earlier attempt failed",
        "error_params": {"code": 1000, "words": ["a", "b"]},
        "provider_answer": {"code": 0, "data": "ok"},
        "sent_at": clock.moment - timedelta(seconds=20),
        "polled_at": clock.moment - timedelta(seconds=10),
        **fields,
    }
    return Message.objects.create(**values)


def row(message: Message) -> dict[str, object]:
    return {
        field.attname: getattr(message, field.attname) for field in Message._meta.concrete_fields
    }


def test_receivers_get_the_whole_message_without_a_query(path, clock):
    message = rich_message(clock)
    before = row(Message.objects.get(pk=message.pk))
    seen, queries = [], []

    def receiver(sender, message, **kwargs):  # send_robust: an assert here would be swallowed
        with CaptureQueriesContext(connection) as captured:
            seen.append(row(message))
        queries.extend(captured.captured_queries)

    signals.status_changed.connect(receiver)
    try:
        services.apply_report(services.ReportData(message.message_id, "DELIVRD"))
    finally:
        signals.status_changed.disconnect(receiver)

    assert len(seen) == 1
    assert queries == []  # no deferred field loaded lazily
    assert seen[0] == {**before, "status": Status.DELIVERED, "provider_status": "DELIVRD"}
    assert isinstance(seen[0]["template_params"], list)
    assert seen[0]["claimed_at"].utcoffset() == timedelta(0)


def test_the_stored_report_is_a_saved_row_with_its_payload_as_json(path, clock):
    message = rich_message(clock)
    payload = {"messageId": message.message_id, "reportTime": "2025-01-02 03:04:05", "n": 1}

    report = services.apply_report(
        services.ReportData(message.message_id, "DELIVRD", "13800138000", payload)
    )

    assert report.pk is not None
    assert not report._state.adding
    stored = StatusReport.objects.get(pk=report.pk)
    assert (stored.message_id, stored.reported_message_id, stored.number) == (
        message.pk,
        message.message_id,
        "13800138000",
    )
    assert (stored.status, stored.raw_status, stored.source) == (
        Status.DELIVERED,
        "DELIVRD",
        StatusReport.Source.CALLBACK,
    )
    assert stored.received_at == clock.moment
    assert StatusReport.objects.filter(payload__reportTime="2025-01-02 03:04:05").get() == stored


def test_an_orphan_and_a_masked_message_are_stored_as_by_the_orm(path, clock):
    masked = rich_message(clock, content_masked=True)
    secret = {"content": "验证码 482913"}

    orphan = services.apply_report(services.ReportData("nobody-has-this-id", "DELIVRD"))
    hidden = services.apply_report(services.ReportData(masked.message_id, "DELIVRD", "", secret))

    assert StatusReport.objects.get(pk=orphan.pk).message is None
    assert "482913" not in str(StatusReport.objects.get(pk=hidden.pk).payload)


def test_a_report_fills_sent_at_only_when_missing_and_clears_maybe_sent(path, clock):
    unknown = rich_message(
        clock, status=Status.UNKNOWN, sent_at=None, maybe_sent=MaybeSent.NO_ANSWER
    )
    sent = rich_message(clock)
    clock.move(5)

    for message in (unknown, sent):
        services.apply_report(services.ReportData(message.message_id, "UNDELIV"))

    unknown.refresh_from_db()
    assert (unknown.status, unknown.provider_status) == (Status.UNDELIVERED, "UNDELIV")
    assert unknown.sent_at == unknown.status_changed_at == clock.moment
    assert unknown.maybe_sent == MaybeSent.NO
    sent_at = sent.sent_at
    sent.refresh_from_db()
    assert sent.sent_at == sent_at
    assert sent.status_changed_at == clock.moment


def test_a_replay_moves_nothing_in_one_statement_on_postgresql_else_two(
    path, clock, received_signals
):
    message = rich_message(clock, status=Status.DELIVERED)

    with CaptureQueriesContext(connection) as captured:
        services.apply_report(services.ReportData(message.message_id, "UNDELIV"))

    kinds = [
        query["sql"].split()[0]
        for query in captured.captured_queries
        if not query["sql"].startswith(TRANSACTION_CONTROL)
    ]
    one_statement = path == "written" and connection.vendor == "postgresql"
    assert kinds == (["WITH"] if one_statement else ["SELECT", "INSERT"])
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED
    assert received_signals == []


# --- Claims and the worker's look at the queue ----------------------------------------------------


def queued(clock, seconds: float = 0, **fields) -> Message:
    moment = clock.moment + timedelta(seconds=seconds)
    return rich_message(clock, status=Status.QUEUED, next_attempt_at=moment, **fields)


def statement_kinds(captured: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"].split()[0]
        for query in captured.captured_queries
        if not query["sql"].startswith(TRANSACTION_CONTROL)
    ]


def test_a_claimed_message_is_its_row_as_claimed(path, clock):
    message = queued(clock, -5)

    (claimed,) = services.claim_due("host:1:token", 10)

    assert row(claimed) == row(Message.objects.get(pk=message.pk))
    assert (claimed.status, claimed.claim_token) == (Status.SENDING, "host:1:token")
    assert (claimed.attempts, claimed.claimed_at) == (3, clock.moment)
    assert claimed.status_changed_at == clock.moment


def test_a_claim_is_one_statement_on_postgresql_else_three(path, clock):
    queued(clock, -5)

    with CaptureQueriesContext(connection) as captured:
        assert len(services.claim_due("host:1:token", 10)) == 1

    one_statement = path == "written" and connection.vendor == "postgresql"
    assert statement_kinds(captured) == (
        ["UPDATE"] if one_statement else ["SELECT", "UPDATE", "SELECT"]
    )


def test_a_claim_takes_the_most_urgent_then_the_longest_due_and_leaves_the_rest(path, clock):
    later = queued(clock, -1, priority=5)
    urgent = queued(clock, -1, priority=0)
    older = queued(clock, -9, priority=5)
    queued(clock, -20, priority=9)  # due longest, but the least urgent
    queued(clock, +60, priority=0)  # not due

    claimed = services.claim_due("host:1:token", 3)

    assert [m.pk for m in claimed] == [urgent.pk, older.pk, later.pk]
    assert Message.objects.filter(status=Status.QUEUED).count() == 2


def test_the_look_at_the_queue_sees_due_stale_and_unknown_messages(path, clock, settings):
    settings.ZHENZI = {**settings.ZHENZI, "CLAIM_TIMEOUT": 60}
    assert services.claims.look_at_queue(10) == services.claims.QueueLook(0, False, False)
    for _ in range(3):
        queued(clock, -1)
    queued(clock, +30)  # not due yet
    rich_message(clock, status=Status.SENDING, claimed_at=clock.moment - timedelta(seconds=59))
    rich_message(clock, status=Status.UNKNOWN, next_attempt_at=clock.moment + timedelta(seconds=1))

    with CaptureQueriesContext(connection) as captured:
        assert services.claims.look_at_queue(2) == services.claims.QueueLook(2, False, False)
    assert len(captured.captured_queries) == (1 if path == "written" else 3)

    clock.move(1.5)
    assert services.claims.look_at_queue(10) == services.claims.QueueLook(3, True, True)


@pytest.mark.parametrize("count", [1, 3])
def test_with_no_receiver_connected_only_the_columns_needed_are_read(path, clock, count):
    messages = [rich_message(clock) for _ in range(count)]

    reports = services.apply_reports(
        [services.ReportData(message.message_id, "DELIVRD") for message in messages]
    )

    for report, message in zip(reports, messages, strict=True):
        deferred = report.message.get_deferred_fields()
        if path == "written":
            assert {"text", "template_params", "sent_at"} <= deferred
            assert "status" not in deferred and "content_masked" not in deferred
        else:
            assert deferred == set()
        assert (report.message.pk, report.message.status) == (message.pk, Status.DELIVERED)
        assert report.message.text == message.text  # loaded when read


def test_a_batch_of_reports_is_one_insert_each_row_in_its_place(path, clock):
    messages = [rich_message(clock) for _ in range(20)]
    payloads = [
        {"messageId": m.message_id, "n": n, "nested": {"k": [n, "发"]}}
        for n, m in enumerate(messages)
    ]
    given = [
        services.ReportData(message.message_id, "DELIVRD", f"1380013{n:04d}", payload)
        for n, (message, payload) in enumerate(zip(messages, payloads, strict=True))
    ]

    with CaptureQueriesContext(connection) as captured:
        reports = services.apply_reports([*given, services.ReportData("nobody", "UNDELIV")])

    assert statement_kinds(captured).count("INSERT") == 1
    for n, (report, message) in enumerate(zip(reports, messages, strict=False)):
        stored = StatusReport.objects.get(pk=report.pk)
        assert (stored.message_id, stored.number) == (message.pk, f"1380013{n:04d}")
        assert (stored.payload, stored.received_at) == (payloads[n], clock.moment)
        assert (stored.status, stored.raw_status) == (Status.DELIVERED, "DELIVRD")
    orphan = StatusReport.objects.get(pk=reports[-1].pk)
    assert (orphan.message_id, orphan.status) == (None, Status.UNDELIVERED)
