"""Django's Tasks framework with a real queue: django-tasks-db's DatabaseBackend and two
``db_worker`` processes. Retries come back as tasks delayed with ``run_after`` (no sweep runs
here), a task enqueued twice sends once, and the sandbox accepts each message exactly once."""

from __future__ import annotations

import sys
from contextlib import ExitStack

import pytest
from django.db import connection

from django_zhenzi.api import send_sms
from django_zhenzi.engines import django_tasks as engine
from django_zhenzi.models import Message, Status
from tests.engines.engine_workers import engine_process
from tests.workers import TEXT, WORKER_SETTINGS, wait_until, worker_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SETTINGS = {
    "TIMEOUT": 2,
    "RETRY_DELAY": 0.5,
    "RETRY_MAX_DELAY": 1,
    "MAX_ATTEMPTS": 10,
    "DISPATCH": "tasks",
    "TASKS_BACKEND": "database",
}


@pytest.fixture(autouse=True)
def _parallel_database() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("workers side by side need PostgreSQL or MariaDB (SQLite serializes them)")


def db_worker_command() -> list[str]:
    return [
        sys.executable,
        "-m",
        "django",
        "db_worker",
        f"--settings={WORKER_SETTINGS}",
        "--backend",
        "database",
        "--queue-name",
        "*",
        "--interval",
        "0.1",
        "--no-startup-delay",
        "--no-reload",
    ]


def test_db_workers_send_each_message_once_with_retries_delayed_by_run_after(
    settings, sandbox, tmp_path
):
    sandbox.set_faults(rates={"code1000": 0.3})  # retried after RETRY_DELAY
    settings.ZHENZI = {**settings.ZHENZI, **SETTINGS, "API_URL": sandbox.url}
    env = worker_env(sandbox.url, **SETTINGS)
    numbers = [str(13900000000 + n) for n in range(400)]
    with ExitStack() as stack:
        for n in range(2):
            stack.enter_context(engine_process(db_worker_command(), env, tmp_path / f"{n}.log"))
        rows = send_sms(numbers, TEXT, queue=True)
        first = [row.message_id for row in rows[:20]]
        for _ in range(2):  # the same messages, enqueued twice more
            engine.send_queued.using(backend="database").enqueue(first)

        def settled() -> bool:
            return not Message.objects.exclude(status=Status.SENT).exists()

        if not wait_until(settled, 60):
            pytest.fail("\n".join(path.read_text() for path in tmp_path.glob("*.log")))

    ids = [row.message_id for row in rows]
    assert [m for m in ids if sandbox.accepted_count(m) != 1] == []
    assert len(sandbox.messages) == 400
    assert Message.objects.filter(attempts__gt=1).exists()  # retried through run_after tasks
