"""Celery dispatch against real brokers (the machine's Redis and RabbitMQ) and real worker
processes: 2,000 messages through two workers, one SIGKILLed mid-run, and tasks delivered
twice. The sandbox's own record must show each message accepted exactly once, none stuck."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from celery import Celery
from django.db import connection

from django_zhenzi.api import send_sms
from django_zhenzi.engines.celery import send_queued, sweep
from django_zhenzi.models import Message, Status
from django_zhenzi.sandbox import Sandbox
from tests.engines.engine_workers import (
    Broker,
    celery_app,
    celery_worker,
    kill_group,
    queues_env,
    wait_ready,
)
from tests.workers import TEXT, queue_messages, wait_until, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Short timeouts, so that a killed worker's claims expire and settle in seconds.
SETTINGS = {
    "TIMEOUT": 1,
    "CLAIM_TIMEOUT": 3,
    "RECONCILE_DELAY": 0.3,
    "RECONCILE_SETTLE": 3,
    "RETRY_DELAY": 0.5,
    "RETRY_MAX_DELAY": 1,
    "MAX_ATTEMPTS": 10,
}


@pytest.fixture(autouse=True)
def _parallel_database() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("workers side by side need PostgreSQL or MariaDB (SQLite serializes them)")


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request) -> Iterator[tuple[Broker, Celery]]:
    with celery_app(request.param) as running:
        yield running


def use_celery(settings, sandbox: Sandbox, broker: Broker) -> dict[str, str]:
    """This process and the workers' environment: Celery dispatch to the run's queue."""
    queues = {word: broker.queue for word in ("high", "normal", "bulk")}
    settings.ZHENZI = {
        **settings.ZHENZI,
        **SETTINGS,
        "API_URL": sandbox.url,
        "DISPATCH": "celery",
        "DISPATCH_QUEUES": queues,
    }
    return worker_env(
        sandbox.url, **SETTINGS, DISPATCH="celery", DISPATCH_QUEUES=queues_env(broker.queue)
    )


def not_settled() -> int:
    return Message.objects.exclude(status=Status.SENT).count()


def sweep_until_settled(broker: Broker, timeout: float) -> bool:
    """Publish the sweep every second (what Celery beat does) until every message is sent."""
    deadline = time.monotonic() + timeout
    while not_settled():
        if time.monotonic() > deadline:
            return False
        sweep.apply_async(kwargs={"grace": 1}, queue=broker.queue)
        wait_until(lambda: not not_settled(), 1.0, interval=0.1)
    return True


def assert_each_accepted_once(sandbox: Sandbox, count: int) -> None:
    ids = list(Message.objects.values_list("message_id", flat=True))
    assert len(ids) == count
    assert [m for m in ids if sandbox.accepted_count(m) != 1] == []
    assert len(sandbox.messages) == count
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


def test_two_workers_one_killed_mid_run_send_each_message_once(settings, sandbox, broker, tmp_path):
    broker, _app = broker
    sandbox.set_faults(latency=0.005)
    env = use_celery(settings, sandbox, broker)
    with ExitStack() as stack:
        logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
        doomed, survivor = (
            stack.enter_context(celery_worker(broker, env, log, f"w{n}"))
            for n, log in enumerate(logs)
        )
        for process, log in zip((doomed, survivor), logs, strict=True):
            wait_ready(process, log)

        send_sms([str(13800000000 + n) for n in range(2000)], TEXT, queue=True, priority="bulk")
        assert wait_until(lambda: len(sandbox.messages) >= 400, 30)
        kill_group(doomed)
        in_flight = Message.objects.filter(status=Status.SENDING).count()
        sent_at_kill = len(sandbox.messages)

        assert sweep_until_settled(broker, timeout=60), f"{not_settled()} messages not sent"

    assert 0 < sent_at_kill < 2000 and in_flight > 0
    assert_each_accepted_once(sandbox, 2000)


def test_tasks_delivered_twice_send_each_message_once(settings, sandbox, broker, tmp_path):
    broker, _app = broker
    env = use_celery(settings, sandbox, broker)
    rows = queue_messages(300)  # queued without a hand-off: the test publishes the tasks
    ids = [row.message_id for row in rows]
    with ExitStack() as stack:
        workers = [
            stack.enter_context(celery_worker(broker, env, tmp_path / f"w{n}.log", f"w{n}"))
            for n in range(2)
        ]
        for n, process in enumerate(workers):
            wait_ready(process, tmp_path / f"w{n}.log")
        for start in range(0, len(ids), 20):
            for _ in range(2):  # the same task message, published twice
                send_queued.apply_async(args=[ids[start : start + 20]], queue=broker.queue)
        assert wait_until(lambda: not not_settled(), 60), f"{not_settled()} not sent"
        time.sleep(1)  # let the duplicates run too

    assert_each_accepted_once(sandbox, 300)
    assert all(sandbox.request_count(message_id) == 1 for message_id in ids)
