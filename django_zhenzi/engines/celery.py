"""Celery tasks (``ZHENZI["DISPATCH"] = "celery"``), thin entries into ``services.engine_work``.

``send_queued`` is acknowledged late and rejected (so redelivered) when its worker process dies:
the claim, not the broker, keeps a redelivered task from sending twice. Tasks have fixed names
(``django_zhenzi.send_queued``, ``django_zhenzi.sweep``) for routing and Celery beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from celery import shared_task

from django_zhenzi.priority import Priority
from django_zhenzi.services import clock, engine_work


@shared_task(
    name="django_zhenzi.send_queued",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def send_queued(message_ids: list[str]) -> dict[str, Any]:
    """Send those of these messages that are still queued and due."""
    return engine_work.counts(engine_work.send_handed_off(message_ids))


@shared_task(name="django_zhenzi.sweep", ignore_result=True)
def sweep(**options: Any) -> dict[str, Any]:
    """The periodic sweep (schedule it with Celery beat, e.g. every minute)."""
    return engine_work.counts(engine_work.sweep(**options))


def enqueue_send(
    message_ids: Sequence[str], *, due_at: datetime, queue: str | None, priority: Priority
) -> None:
    """Publish one ``send_queued`` task, delayed until ``due_at`` (Celery's ``eta``)."""
    options: dict[str, Any] = {}
    if due_at > clock.now():
        options["eta"] = due_at
    if queue:
        options["queue"] = queue
    send_queued.apply_async(args=[list(message_ids)], **options)
