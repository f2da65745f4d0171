"""The callback's cost per request: all the reports of one POST in one transaction, with a fixed
number of statements however many reports it holds, under the same rules as one report."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from django_zhenzi import services, signals
from django_zhenzi.models import Message, StatusReport
from django_zhenzi.status import Status
from tests.webhooks.callback_requests import (
    VERIFICATION_TEXT,
    make_message,
    post_form,
    post_json,
    sandbox_report,
    status_changes,
)

pytestmark = pytest.mark.django_db

TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT", "ROLLBACK")


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"] for q in captured.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL)
    ]


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


def test_many_reports_for_many_messages_take_a_fixed_number_of_statements(
    client, django_assert_max_num_queries, received_signals
):
    delivered = [make_message() for _ in range(30)]
    undelivered = [make_message() for _ in range(20)]
    batch = (
        [sandbox_report(m.message_id) for m in delivered]
        + [sandbox_report(m.message_id, "fail") for m in undelivered]
        + [sandbox_report(f"orphan-{n}") for n in range(5)]
    )

    with CaptureQueriesContext(connection) as captured, django_assert_max_num_queries(8):
        assert post_json(client, batch).status_code == 200

    # SELECT the messages, INSERT the reports, one UPDATE per (status, provider's word).
    assert [sql.split()[0] for sql in statements(captured)] == [
        "SELECT",
        "INSERT",
        "UPDATE",
        "UPDATE",
    ]
    assert StatusReport.objects.count() == 55
    assert StatusReport.objects.filter(message__isnull=True).count() == 5
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert {statuses[m.pk] for m in delivered} == {Status.DELIVERED}
    assert {statuses[m.pk] for m in undelivered} == {Status.UNDELIVERED}
    assert sorted(status_changes(received_signals)) == sorted(
        [(Status.SENT, Status.DELIVERED)] * 30 + [(Status.SENT, Status.UNDELIVERED)] * 20
    )


def test_one_report_takes_one_statement_on_postgresql_else_three_in_one_transaction(client):
    message = make_message()

    with CaptureQueriesContext(connection) as captured:
        assert post_form(client, sandbox_report(message.message_id)).status_code == 200

    savepoints = [q for q in captured.captured_queries if q["sql"].startswith("SAVEPOINT")]
    if connection.vendor == "postgresql":
        assert [sql.split()[0] for sql in statements(captured)] == ["WITH"]
        assert savepoints == []  # the statement is its own transaction
    else:
        assert [sql.split()[0] for sql in statements(captured)] == ["SELECT", "INSERT", "UPDATE"]
        # Inside the test's transaction, the request's one atomic block is one savepoint.
        assert len(savepoints) == 1
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_reports_of_one_message_in_one_request_apply_in_order(client, received_signals):
    first, second, replayed = make_message(), make_message(), make_message(Status.DELIVERED)
    batch = [
        sandbox_report(first.message_id, "fail"),
        sandbox_report(first.message_id, "success"),  # same rank: cannot overturn the first
        sandbox_report(second.message_id, "unheard-of-word"),  # kept raw, moves nothing
        sandbox_report(second.message_id, "success"),
        sandbox_report(replayed.message_id, "fail"),  # already final: never moves back
    ]

    assert post_json(client, batch).status_code == 200

    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses[first.pk] == Status.UNDELIVERED
    assert statuses[second.pk] == Status.DELIVERED
    assert statuses[replayed.pk] == Status.DELIVERED
    assert StatusReport.objects.count() == 5
    assert len(status_changes(received_signals)) == 2
    first.refresh_from_db()
    assert first.provider_status == "fail"


def test_a_message_that_was_not_known_as_sent_is_announced_as_sent(client, received_signals):
    unknown = make_message(Status.UNKNOWN)
    sent = make_message()

    batch = [sandbox_report(unknown.message_id), sandbox_report(sent.message_id)]
    assert post_json(client, batch).status_code == 200

    announced = [kw["message"].pk for name, kw in received_signals if name == "message_sent"]
    assert announced == [unknown.pk]
    unknown.refresh_from_db()
    assert unknown.sent_at is not None
    assert unknown.maybe_sent == ""


def test_a_failure_in_a_batch_keeps_none_of_its_reports(client, monkeypatch):
    done, doomed = make_message(), make_message()
    real = services.reports.advance_many
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise DatabaseError("the second update failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(services.reports, "advance_many", fail_second)
    batch = [sandbox_report(done.message_id), sandbox_report(doomed.message_id, "fail")]

    assert post_json(client, batch).status_code == 500

    assert StatusReport.objects.count() == 0
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


def test_a_masked_message_keeps_its_code_out_of_the_stored_payload_in_a_batch():
    masked = make_message(content_masked=True)
    plain = make_message()
    reports = [
        services.ReportData(m.message_id, "DELIVRD", payload={"content": VERIFICATION_TEXT})
        for m in (masked, plain)
    ]

    services.apply_reports(reports)

    assert StatusReport.objects.get(message=masked).payload["content"] != VERIFICATION_TEXT
    assert "482913" not in str(StatusReport.objects.get(message=masked).payload)
    assert StatusReport.objects.get(message=plain).payload["content"] == VERIFICATION_TEXT


@pytest.mark.django_db(transaction=True)
def test_with_atomic_requests_the_reports_still_commit_on_their_own(client, monkeypatch):
    """The view is outside ``ATOMIC_REQUESTS``: its reports are not a savepoint of a request
    transaction (which would keep them from being written together with other requests')."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    message = make_message()
    in_transaction = []

    def receiver(sender, **kwargs):
        in_transaction.append(connection.in_atomic_block)

    signals.status_changed.connect(receiver)
    try:
        with CaptureQueriesContext(connection) as captured:
            assert post_form(client, sandbox_report(message.message_id)).status_code == 200
    finally:
        signals.status_changed.disconnect(receiver)

    assert not [q for q in captured.captured_queries if "SAVEPOINT" in q["sql"]]
    if connection.vendor == "postgresql":  # one statement, its own transaction; then the signal
        assert in_transaction == [False]
    assert StatusReport.objects.filter(message=message).count() == 1
