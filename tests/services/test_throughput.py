"""What a worker pass costs: how a short queue is shared among threads, and queries per message."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_zhenzi import services
from django_zhenzi.models import Message, Status
from tests.workers import queue_messages

LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
QUERIES_PER_MESSAGE = 3

pytestmark = pytest.mark.django_db


@pytest.fixture
def locmem(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}


def test_a_short_queue_is_shared_among_the_threads(locmem):
    queue_messages(40)

    result = services.work_batch(batch_size=100, peers=4)

    assert result.claimed == 10  # its share, not the whole queue in one batch
    assert Message.objects.filter(status=Status.QUEUED).count() == 30


@pytest.mark.django_db(transaction=True)
def test_threads_of_a_run_claim_their_share(locmem):
    queue_messages(40)
    claims: list[int] = []
    lock = threading.Lock()

    def record(result: services.PassResult) -> None:
        with lock:
            claims.append(result.claimed)

    total = services.run_workers(concurrency=4, batch_size=100, on_batch=record)

    assert total.sent == 40
    assert max(claims) <= 10, claims


def test_a_long_queue_is_claimed_in_full_batches(locmem):
    queue_messages(60)

    assert services.work_batch(batch_size=10, peers=4).claimed == 10


def test_one_thread_claims_a_full_batch_without_counting_the_queue():
    with CaptureQueriesContext(connection) as captured:
        assert services.worker.fair_share(100, 1) == 100
    assert captured.captured_queries == []


def test_a_worker_run_costs_at_most_three_queries_per_sent_message(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    queue_messages(120)

    with CaptureQueriesContext(connection) as captured:
        result = services.run_workers(batch_size=50)

    assert result.sent == 120
    statements = [q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= QUERIES_PER_MESSAGE * result.sent
    assert len(statements) <= 30  # claims and bulk updates per batch: none per message


def test_a_pass_over_an_empty_queue_is_one_query(locmem):
    with CaptureQueriesContext(connection) as captured:
        result = services.work_batch(batch_size=10, peers=4)

    assert (result.claimed, result.expired_claims, result.reconciled) == (0, 0, 0)
    assert len(captured.captured_queries) == 1


def test_a_stale_claim_is_expired_and_reconciled_in_the_same_pass(locmem, clock):
    (message,) = queue_messages(1)
    Message.objects.update(status=Status.SENDING, claim_token="dead", claimed_at=clock.moment)

    clock.move(301)  # past CLAIM_TIMEOUT
    result = services.work_batch(batch_size=10, peers=4)

    assert (result.expired_claims, result.reconciled) == (1, 1)
    assert Message.objects.get(pk=message.pk).status != Status.SENDING
