"""Reconciliation: an ambiguous outcome is settled by asking findSmsByMessageId, and "not found"
is believed only once RECONCILE_SETTLE has passed. Through the sandbox; the services' clock is
moved instead of waiting (the sandbox keeps real time: its "late" records appear in real time).
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest

from django_zhenzi import send_sms, services
from django_zhenzi.client import ZhenziClient
from django_zhenzi.models import MaybeSent, Message, Status
from django_zhenzi.reasons import TEMPLATES, ErrorKind
from django_zhenzi.sandbox.provider import FIND_PATH

pytestmark = pytest.mark.django_db

NUMBER = "13800138000"
TEXT = "【测试】您的订单已发货"
DELAY = 10
SETTLE = 600


@pytest.fixture
def zhenzi(settings, sandbox):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "RECONCILE_DELAY": DELAY,
        "RECONCILE_SETTLE": SETTLE,
        "RETRY_DELAY": 1,
    }
    sandbox.hang_seconds = 0  # a "late" request's connection is closed at once
    return sandbox


def status_moves(received_signals) -> list[tuple[str, str]]:
    return [
        (kwargs["old_status"], kwargs["new_status"])
        for name, kwargs in received_signals
        if name == "status_changed"
    ]


def reconcile_until_settled(message: Message, clock) -> list[float]:
    """Run a worker pass at each time the message is due to be asked about again, until it
    leaves ``unknown``; the seconds after the ambiguous outcome at which it was asked."""
    became_unknown = message.status_changed_at
    asked_at = []
    while message.status == Status.UNKNOWN:
        assert len(asked_at) < 30, asked_at
        clock.moment = message.next_attempt_at - timedelta(seconds=1)
        assert services.run_workers().reconciled == 0  # not due a second before
        clock.moment = message.next_attempt_at
        assert services.run_workers().reconciled == 1
        asked_at.append((clock.moment - became_unknown).total_seconds())
        message.refresh_from_db()
    return asked_at


def test_not_found_is_asked_again_at_growing_intervals_until_the_window_ends(zhenzi, clock):
    message = send_sms(NUMBER, TEXT, queue=True)
    zhenzi.fail_next("http500")  # the request never reached the provider's records
    services.run_workers()
    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.UNKNOWN, MaybeSent.NO_ANSWER)
    assert message.status_changed_at == clock.moment
    assert message.next_attempt_at == clock.moment + timedelta(seconds=DELAY)

    asked_at = reconcile_until_settled(message, clock)

    assert asked_at == [10, 20, 40, 80, 160, 320, 600]
    waits = [later - earlier for earlier, later in itertools.pairwise(asked_at)]
    assert waits == sorted(waits)  # each wait at least the one before...
    assert asked_at[-1] == SETTLE  # ...and the last ask right at the window's end
    assert zhenzi.requests_by_endpoint[FIND_PATH] == len(asked_at)
    # Only then is "not found" believed: queued again, no longer "may have been sent".
    assert (message.status, message.maybe_sent) == (Status.QUEUED, MaybeSent.NO)
    assert message.error_kind == ErrorKind.NEVER_RECEIVED
    assert message.error_text == TEMPLATES[ErrorKind.NEVER_RECEIVED]
    assert zhenzi.request_count(message.message_id) == 1

    clock.moment = message.next_attempt_at
    assert services.run_workers().sent == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.attempts == 2
    assert zhenzi.request_count(message.message_id) == 2
    assert zhenzi.accepted_count(message.message_id) == 1


def test_the_window_is_the_setting(zhenzi, settings, clock):
    settings.ZHENZI = {**settings.ZHENZI, "RECONCILE_SETTLE": 100}
    message = send_sms(NUMBER, TEXT, queue=True)
    zhenzi.fail_next("http500")
    services.run_workers()
    message.refresh_from_db()

    assert reconcile_until_settled(message, clock) == [10, 20, 40, 80, 100]
    assert message.status == Status.QUEUED


def test_a_message_the_provider_records_late_is_found_and_never_sent_twice(
    zhenzi, clock, received_signals
):
    zhenzi.late_seconds = 0.5
    message = send_sms(NUMBER, TEXT, queue=True)
    zhenzi.fail_next("late")  # processed, answer lost, recorded half a second later
    services.run_workers()
    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.UNKNOWN, MaybeSent.NO_ANSWER)

    clock.move(DELAY)
    assert services.run_workers().reconciled == 1  # not recorded yet: within the window
    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.UNKNOWN, MaybeSent.NO_ANSWER)
    assert zhenzi.accepted_count(message.message_id) == 0

    deadline = time.monotonic() + 5
    while not zhenzi.accepted_count(message.message_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    clock.moment = message.next_attempt_at
    assert services.run_workers().reconciled == 1

    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.SENT, MaybeSent.NO)
    assert message.provider_answer["findSmsByMessageId"]["messageId"] == message.message_id
    assert (message.error_code, message.error_text) == (None, "")
    assert zhenzi.request_count(message.message_id) == 1
    assert zhenzi.accepted_count(message.message_id) == 1
    assert status_moves(received_signals) == [
        (Status.SENDING, Status.UNKNOWN),
        (Status.UNKNOWN, Status.SENT),
    ]


def earlier_attempt_arrived(sandbox, message: Message, *, late: bool = False) -> None:
    """The provider got this messageId before (an attempt whose answer never came back);
    ``late``: it records it only long after the test."""
    if late:
        sandbox.late_seconds = 3600
        sandbox.fail_next("late")
    with ZhenziClient(sandbox.url, "test-app", "test-secret-value", timeout=2) as client:
        try:
            client.send(message.number, message.text, message_id=message.message_id)
        except Exception:
            assert late  # only the late one loses its answer


def test_a_duplicate_refusal_is_reconciled_and_found_as_sent(zhenzi, clock, received_signals):
    message = send_sms(NUMBER, TEXT, queue=True)
    earlier_attempt_arrived(zhenzi, message)

    result = services.run_workers()

    assert (result.sent, result.failed, result.retried, result.unknown) == (0, 0, 0, 1)
    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.UNKNOWN, MaybeSent.DUPLICATE)
    assert message.error_code == 100
    assert zhenzi.repeat_count(message.message_id) == 1

    clock.move(DELAY)
    services.run_workers()

    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.SENT, MaybeSent.NO)
    assert (message.error_code, message.error_text) == (None, "")
    assert zhenzi.request_count(message.message_id) == 2
    assert zhenzi.accepted_count(message.message_id) == 1
    assert status_moves(received_signals) == [
        (Status.SENDING, Status.UNKNOWN),
        (Status.UNKNOWN, Status.SENT),
    ]


def test_a_duplicate_never_found_is_taken_as_sent_once_settled(zhenzi, clock, received_signals):
    message = send_sms(NUMBER, TEXT, queue=True)
    earlier_attempt_arrived(zhenzi, message, late=True)  # taken, never shown during the test
    services.run_workers()
    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.UNKNOWN, MaybeSent.DUPLICATE)

    asked_at = reconcile_until_settled(message, clock)

    assert asked_at[-1] == SETTLE
    assert (message.status, message.maybe_sent) == (Status.SENT, MaybeSent.NO)
    assert message.error_kind == ErrorKind.DUPLICATE_TAKEN_AS_SENT
    assert message.error_text == TEMPLATES[ErrorKind.DUPLICATE_TAKEN_AS_SENT]
    assert message.sent_at == clock.moment
    assert message.attempts == 1
    assert zhenzi.request_count(message.message_id) == 2  # never sent a third time
    assert status_moves(received_signals) == [
        (Status.SENDING, Status.UNKNOWN),
        (Status.UNKNOWN, Status.SENT),
    ]
    clock.move(3600)
    assert services.run_workers().claimed == 0


def test_a_late_record_past_the_window_gets_a_refused_repeat_not_a_second_copy(zhenzi, clock):
    zhenzi.late_seconds = 3600  # the provider records it long after RECONCILE_SETTLE
    message = send_sms(NUMBER, TEXT, queue=True)
    zhenzi.fail_next("late")
    services.run_workers()
    message.refresh_from_db()

    reconcile_until_settled(message, clock)  # "not found" believed after the window
    assert message.status == Status.QUEUED
    clock.moment = message.next_attempt_at
    services.run_workers()  # the repeat is refused: the first request holds the messageId
    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.UNKNOWN, MaybeSent.DUPLICATE)

    reconcile_until_settled(message, clock)

    assert message.status == Status.SENT
    assert message.error_kind == ErrorKind.DUPLICATE_TAKEN_AS_SENT
    assert message.error_text == TEMPLATES[ErrorKind.DUPLICATE_TAKEN_AS_SENT]
    assert zhenzi.repeat_count(message.message_id) == 1
    assert zhenzi.request_count(message.message_id) == 2


def test_a_failed_look_up_asks_again_later(zhenzi, clock):
    message = send_sms(NUMBER, TEXT, queue=True)
    zhenzi.fail_next("cut")  # processed, answer lost
    services.run_workers()
    clock.move(DELAY)
    zhenzi.fail_next("http500")  # and the look-up fails too

    assert services.run_workers().reconciled == 1

    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.UNKNOWN, MaybeSent.NO_ANSWER)
    assert message.error_text.startswith("Reconciliation failed, will ask again:")
    assert message.next_attempt_at > clock.moment
    clock.moment = message.next_attempt_at
    services.run_workers()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert zhenzi.request_count(message.message_id) == 1


def test_a_backend_without_look_ups_fails_the_message_and_keeps_the_doubt(settings, clock):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": "django_zhenzi.backends.dummy.SmsBackend"}
    message = Message.objects.create(
        number=NUMBER,
        text=TEXT,
        status=Status.UNKNOWN,
        maybe_sent=MaybeSent.NO_ANSWER,
        attempts=1,
        next_attempt_at=clock.moment,
        status_changed_at=clock.moment,
    )

    assert services.run_workers().reconciled == 1

    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.maybe_sent == MaybeSent.NO_ANSWER
    assert message.error_kind == ErrorKind.NO_LOOKUP
    assert message.error_text == TEMPLATES[ErrorKind.NO_LOOKUP]
    # A plain resend holds it back: it may have been sent.
    assert services.requeue_failed(Message.objects.all()) == services.RequeueResult(0, 0, 1)
