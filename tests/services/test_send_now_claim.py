"""Sending now (``send_sms(..., queue=False)``) keeps its claim: a batch slower than CLAIM_TIMEOUT
is not taken for a dead sender's by a worker running beside it, and rows waiting for their
sender are not due for workers. In process; the lead's fault matrix has the process version."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

import django_zhenzi
from django_zhenzi import send_sms, services
from django_zhenzi.models import Message, Status
from django_zhenzi.sandbox.provider import FIND_PATH, SUCCESS_TEXT
from tests.workers import worker_thread

TEXT = "【测试】您的订单已发货"
LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"


@pytest.mark.django_db(transaction=True)
def test_a_send_now_slower_than_the_claim_timeout_keeps_its_claim_beside_a_worker(
    settings, sandbox
):
    # 20 requests of 0.1 s: a batch of about 2 s under a claim that expires after 1.5 s.
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "CLAIM_TIMEOUT": 1.5,
        "TIMEOUT": 0.5,
    }
    sandbox.set_faults(latency=0.1)
    numbers = [f"138001380{n:02d}" for n in range(20)]
    with worker_thread(idle_wait=0.02) as worker_total:
        rows = send_sms(numbers, TEXT)  # outside a transaction: sent before it returns
        stored = [Message.objects.get(pk=row.pk) for row in rows]

    assert [message.status for message in stored] == [Status.SENT] * 20
    # Each answer was recorded by its sender, not found later by a reconciliation.
    assert all(message.provider_answer == {"code": 0, "data": SUCCESS_TEXT} for message in stored)
    assert all(message.attempts == 1 for message in stored)
    counts = sandbox.counts()
    assert sorted(counts["accepted"]) == sorted(message.message_id for message in stored)
    assert set(counts["request_counts"].values()) == {1}
    assert counts["repeat_counts"] == {}
    (total,) = worker_total
    assert (total.expired_claims, total.reconciled, total.claimed) == (0, 0, 0)
    assert sandbox.requests_by_endpoint[FIND_PATH] == 0
    assert not Message.objects.filter(status__in=[Status.QUEUED, Status.UNKNOWN]).exists()


@pytest.fixture
def locmem(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CLAIM_TIMEOUT": 300}


@pytest.mark.django_db
def test_rows_waiting_for_their_sender_are_not_due_for_workers(
    locmem, clock, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rows = send_sms(["13800138000", "13900139000"], TEXT)  # the commit has not come yet

    stored = Message.objects.filter(pk__in=[row.pk for row in rows])
    assert {(m.status, m.next_attempt_at) for m in stored} == {
        (Status.QUEUED, clock.moment + timedelta(seconds=300))
    }
    clock.move(299)
    assert services.run_workers().claimed == 0  # held back for the sender

    (send_now,) = callbacks
    send_now()  # the commit: the sender claims them, due or not

    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    assert sorted(sms.number for sms in django_zhenzi.outbox) == ["13800138000", "13900139000"]


@pytest.mark.django_db
def test_rows_whose_sender_died_are_sent_by_a_worker_once_the_claim_timeout_passed(
    locmem, clock, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send_sms(["13800138000", "13900139000"], TEXT)
    clock.move(300)  # the sender never came back

    assert services.run_workers().sent == 2

    (send_now,) = callbacks
    late = send_now()  # a sender that was only very slow claims nothing
    assert late.claimed == 0
    assert len(django_zhenzi.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_a_send_now_waits_for_a_lock_another_claim_holds_on_its_rows(locmem):
    """MySQL and MariaDB lock every row a worker's claim scan reads: a send-now that skipped
    locked rows would leave them queued until CLAIM_TIMEOUT. It waits for the lock instead."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no row locks to skip")
    rows = send_sms(["13800138000", "13900139000"], TEXT, queue=True)
    locked, release_lock = threading.Event(), threading.Event()

    def hold_a_row_lock() -> None:
        try:
            with transaction.atomic():
                list(Message.objects.select_for_update().filter(pk=rows[0].pk))
                locked.set()
                release_lock.wait(5)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_a_row_lock)
    holder.start()
    assert locked.wait(5)
    threading.Timer(0.3, release_lock.set).start()
    result = services.send_now([row.message_id for row in rows])  # while a row is locked
    holder.join(5)

    assert result.sent == 2
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
