"""Two engines and the built-in worker at once, on one database: a Celery worker (Redis), two
django-tasks-db ``db_worker`` processes and a ``zhenzi_send_queued --loop`` worker all get the
same 1,000 messages (every message handed to both engines, which the worker does not wait for).
Each must reach the sandbox exactly once."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from django.db import connection

from django_zhenzi.engines import django_tasks
from django_zhenzi.models import Message, Status
from django_zhenzi.priority import Priority
from django_zhenzi.services import clock, handoff
from tests.engines.engine_workers import celery_app, celery_worker, engine_process, wait_ready
from tests.engines.test_celery import use_celery
from tests.engines.test_django_tasks_db import db_worker_command
from tests.workers import queue_messages, wait_until, worker_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_celery_db_workers_and_zhenzi_send_queued_at_once_send_each_message_once(
    settings, sandbox, tmp_path
):
    if connection.vendor == "sqlite":
        pytest.skip("workers side by side need PostgreSQL or MariaDB (SQLite serializes them)")
    sandbox.set_faults(latency=0.005)
    with celery_app("redis") as (broker, _app), ExitStack() as stack:
        env = use_celery(settings, sandbox, broker)
        celery = stack.enter_context(celery_worker(broker, env, tmp_path / "celery.log", "w"))
        wait_ready(celery, tmp_path / "celery.log")
        tasks_env = {**env, "ZHENZI_DISPATCH": "tasks", "ZHENZI_TASKS_BACKEND": "database"}
        db_workers = [
            stack.enter_context(
                engine_process(db_worker_command(), tasks_env, tmp_path / f"db-{n}.log")
            )
            for n in range(2)
        ]
        worker = stack.enter_context(worker_process(["--loop", "--idle-wait", "0.1"], env))

        ids = [row.message_id for row in queue_messages(1000)]
        handoff.hand_off(ids, clock.now(), Priority.NORMAL)  # to Celery (DISPATCH)
        for start in range(0, len(ids), 20):
            task = django_tasks.send_queued.using(backend="database")
            task.enqueue(ids[start : start + 20])

        def settled() -> bool:
            return not Message.objects.exclude(status=Status.SENT).exists()

        assert wait_until(settled, 60)
        db_pids = {process.pid for process in db_workers}

    assert [m for m in ids if sandbox.accepted_count(m) != 1] == []
    assert len(sandbox.messages) == 1000
    senders = {
        "zhenzi_send_queued" if pid == worker.pid else "db_worker" if pid in db_pids else "celery"
        for pid in sender_pids()
    }
    assert len(senders) >= 2, senders  # they did share the work


def sender_pids() -> set[int]:
    """The process ids in the claim tokens (host:pid:random) of the sent messages."""
    tokens = Message.objects.values_list("claim_token", flat=True).distinct()
    return {int(token.split(":")[1]) for token in tokens}
