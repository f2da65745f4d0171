"""Statuses move forward only, whatever the order, repetition or concurrency of reports; a
failure while storing keeps nothing half done."""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import Q
from django.test import Client
from django.test.utils import CaptureQueriesContext

from django_zhenzi import services
from django_zhenzi.backends import OutgoingSms, locmem
from django_zhenzi.models import Message, StatusReport
from django_zhenzi.status import STATUS_RANK, Status
from tests.triggers import database_refuses
from tests.webhooks.callback_requests import (
    FORM,
    TOKEN,
    VERIFICATION_TEXT,
    callback_url,
    make_message,
    post_form,
    post_json,
    sandbox_report,
    status_changes,
)
from tests.workers import run_to_the_end

pytestmark = pytest.mark.django_db


# --- Status rules ---------------------------------------------------------------------------------


def test_the_same_report_a_hundred_times(csrf_client, received_signals):
    message = make_message()
    body = urlencode(sandbox_report(message.message_id))

    answers = [
        csrf_client.post(callback_url(), body, content_type=FORM).status_code for _ in range(100)
    ]

    assert answers == [200] * 100
    assert StatusReport.objects.filter(message=message).count() == 100
    assert status_changes(received_signals) == [(Status.SENT, Status.DELIVERED)]


REPORT_WORDS = {Status.DELIVERED: "success", Status.UNDELIVERED: "fail"}
EVENT_SEQUENCES = [
    ("sent", "delivered"),
    ("sent", "delivered", "delivered"),
    ("sent", "delivered", "delivered", "delivered"),
    ("sent", "undelivered"),
    ("sent", "undelivered", "undelivered"),
    ("sent", "undelivered", "undelivered", "undelivered"),
    ("sent", "delivered", "undelivered"),
    ("sent", "undelivered", "delivered", "delivered"),
]
ORDERS = sorted({order for seq in EVENT_SEQUENCES for order in itertools.permutations(seq)})


_reports_during_send: list[Callable[[], None]] = []


class AnswerOvertakenBackend(locmem.SmsBackend):
    """The locmem backend, with the reports queued in ``_reports_during_send`` arriving while it
    sends: after the provider accepted the message, before the worker records the answer."""

    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        answer = super().send(sms)
        while _reports_during_send:
            _reports_during_send.pop(0)()
        return answer


@pytest.mark.parametrize("events", ORDERS, ids=["-".join(order) for order in ORDERS])
def test_every_order_of_events_ends_at_the_highest_rank(
    settings, csrf_client, received_signals, events
):
    """ "sent" is the worker recording the provider's answer; the others are reports on the
    callback, and those before "sent" overtake the answer. The first final report wins
    (delivered and undelivered share the top rank)."""
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": f"{__name__}.AnswerOvertakenBackend"}
    token = services.new_claim_token()
    created = Message.objects.create(number="13800138000", text=VERIFICATION_TEXT)
    [message] = services.claim(Q(pk=created.pk), token, limit=1)

    def report(event: str) -> None:
        word = REPORT_WORDS[event]
        assert post_form(csrf_client, sandbox_report(message.message_id, word)).status_code == 200

    sent_at = events.index("sent")
    _reports_during_send[:] = [functools.partial(report, event) for event in events[:sent_at]]
    services.send_claimed(message, token)
    assert _reports_during_send == []
    for event in events[sent_at + 1 :]:
        report(event)

    final = Message.objects.get(pk=message.pk)
    first_report = next(event for event in events if event != "sent")
    assert final.status == first_report
    assert final.sent_at is not None
    assert final.provider_answer == {"code": 0, "data": "locmem"}
    changes = [new for _, new in status_changes(received_signals)]
    assert changes == ([Status.SENT, first_report] if sent_at == 0 else [first_report])
    assert [name for name, _ in received_signals].count("message_sent") == 1
    assert StatusReport.objects.filter(message=final).count() == len(events) - 1


@pytest.mark.parametrize("start", list(Status))
@pytest.mark.parametrize("word", ["success", "fail"])
def test_a_report_moves_only_forward_from_any_status(csrf_client, received_signals, start, word):
    message = make_message(status=start)
    reported = {"success": Status.DELIVERED, "fail": Status.UNDELIVERED}[word]

    assert post_form(csrf_client, sandbox_report(message.message_id, word)).status_code == 200

    message.refresh_from_db()
    if STATUS_RANK[start] < STATUS_RANK[reported]:
        assert message.status == reported
        assert status_changes(received_signals) == [(start, reported)]
    else:
        assert message.status == start
        assert received_signals == []
    assert StatusReport.objects.count() == 1


def post_from_threads(url: str, bodies: list[bytes]) -> list[int]:
    """POST each body from its own thread and client, all released at once."""
    barrier = threading.Barrier(len(bodies))
    answers: list[int] = [0] * len(bodies)

    def post(index: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            answers[index] = client.post(url, bodies[index], content_type=FORM).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(bodies))]
    run_to_the_end(threads)
    return answers


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "words",
    [["success"] * 10, ["success", "DELIVRD"] * 5, ["success", "fail"] * 5],
    ids=["same", "synonyms", "contradicting"],
)
def test_concurrent_reports_for_one_message(received_signals, words):
    message = make_message()
    bodies = [urlencode(sandbox_report(message.message_id, word)).encode() for word in words]

    answers = post_from_threads(callback_url(), bodies)

    assert answers == [200] * 10
    assert StatusReport.objects.filter(message=message).count() == 10
    message.refresh_from_db()
    changes = status_changes(received_signals)
    assert len(changes) == 1
    assert changes[0] == (Status.SENT, message.status)
    assert message.status in {Status.DELIVERED, Status.UNDELIVERED}
    if "fail" not in words:
        assert message.status == Status.DELIVERED


def test_at_most_four_queries_per_report(csrf_client):
    messages = [make_message() for _ in range(20)]
    batch = [sandbox_report(m.message_id) for m in messages] + [sandbox_report("orphan")]
    with CaptureQueriesContext(connection) as captured:
        assert post_json(csrf_client, batch).status_code == 200
    # The test runs inside a transaction, so each report's atomic block adds savepoints.
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 4 * len(batch)
    assert StatusReport.objects.count() == len(batch)


# --- Failures while storing -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_storing_answers_500_and_keeps_nothing_half_done(csrf_client, caplog):
    message = make_message()

    with database_refuses("django_zhenzi_message", "UPDATE"), caplog.at_level(logging.DEBUG):
        response = post_form(csrf_client, sandbox_report(message.message_id))

    assert response.status_code == 500
    assert TOKEN not in response.content.decode()
    assert StatusReport.objects.count() == 0
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert "delivery-report request failed" in caplog.text
    assert TOKEN not in caplog.text

    assert post_form(csrf_client, sandbox_report(message.message_id)).status_code == 200
    assert StatusReport.objects.count() == 1
