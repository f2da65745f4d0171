"""Django Tasks (``ZHENZI["DISPATCH"] = "tasks"``): ``django.tasks`` on Django 6, the
``django-tasks`` backport on 5.2. Any Tasks backend works; the one in ``settings.TASKS`` named by
``ZHENZI["TASKS_BACKEND"]`` is used. The tasks are thin entries into ``services.engine_work``.

A backend that cannot delay a task (``supports_defer`` false, like the immediate backend) gets
no task for a retry: the sweep sends it once due. Priorities go both to the queue the site names
(``DISPATCH_QUEUES``) and, where the backend supports it, to the task's own priority.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

try:  # Django 6+
    from django.tasks import DEFAULT_TASK_QUEUE_NAME, task, task_backends
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import DEFAULT_TASK_QUEUE_NAME, task, task_backends

from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.priority import Priority
from django_zhenzi.services import clock, engine_work, handoff

#: The Tasks priority (-100 to 100, default 0) of each message priority.
TASK_PRIORITY = {Priority.HIGH: 50, Priority.NORMAL: 0, Priority.BULK: -50}


def _declared_on() -> dict[str, str]:
    """The backend and queue a task is declared with (validated at import, like Django does)."""
    return {
        "backend": zhenzi_settings.TASKS_BACKEND,
        "queue_name": handoff.queue_for(Priority.NORMAL) or DEFAULT_TASK_QUEUE_NAME,
    }


@task(**_declared_on())
def send_queued(message_ids: list[str]) -> dict[str, Any]:
    """Send those of these messages that are still queued and due."""
    return engine_work.counts(engine_work.send_handed_off(message_ids))


@task(**_declared_on())
def sweep(
    limit: int = engine_work.SWEEP_LIMIT, grace: float = engine_work.SWEEP_GRACE
) -> dict[str, Any]:
    """The periodic sweep: enqueue it from a scheduler, or run ``zhenzi_send_queued`` from cron."""
    return engine_work.counts(engine_work.sweep(limit=limit, grace=grace))


def enqueue_send(
    message_ids: Sequence[str], *, due_at: datetime, queue: str | None, priority: Priority
) -> None:
    """Enqueue one ``send_queued`` task, to run from ``due_at`` (``run_after``)."""
    alias = zhenzi_settings.TASKS_BACKEND
    backend = task_backends[alias]
    options: dict[str, Any] = {"backend": alias, "queue_name": queue or DEFAULT_TASK_QUEUE_NAME}
    if backend.supports_priority:
        options["priority"] = TASK_PRIORITY[priority]
    if due_at > clock.now():
        if not backend.supports_defer:
            return  # the sweep sends it once due
        options["run_after"] = due_at
    send_queued.using(**options).enqueue(list(message_ids))
