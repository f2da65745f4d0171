"""Handing queued messages to the site's task engine (``ZHENZI["DISPATCH"]``).

With ``"worker"`` nothing is handed over: ``zhenzi_send_queued`` workers find due messages
themselves. With ``"celery"`` or ``"tasks"``, ``hand_off`` enqueues the messageIds of new,
retried and requeued messages once the transaction commits, due when they are due, on the queue
of their priority. A task carries messageIds, never content, and runs ``send_handed_off``: it
claims only those still queued *and due*, through the one claim -> send -> record path, so a task
delivered twice sends nothing more and a task that runs early leaves its messages alone.
What no task comes for (the broker was down at the commit, a worker was killed, a retry on a
backend that cannot delay a task) the periodic ``sweep`` sends (``engine_work``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction
from django.utils.module_loading import import_string

from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import Message
from django_zhenzi.priority import Priority

logger = logging.getLogger("django_zhenzi")

#: What each ``DISPATCH`` value other than "worker" enqueues with: a function taking
#: ``(message_ids, *, due_at, queue, priority)``.
ENGINES = {
    "celery": "django_zhenzi.engines.celery.enqueue_send",
    "tasks": "django_zhenzi.engines.django_tasks.enqueue_send",
}
DISPATCH_CHOICES = ("worker", *ENGINES)


def engine() -> Callable[..., Any] | None:
    """The configured engine's enqueue function; None for the built-in worker."""
    name = zhenzi_settings.DISPATCH
    if name == "worker":
        return None
    if name not in ENGINES:
        raise ImproperlyConfigured(
            f"settings.ZHENZI['DISPATCH'] must be one of {', '.join(DISPATCH_CHOICES)}."
        )
    return import_string(ENGINES[name])


def queue_for(priority: int) -> str | None:
    """The queue the site routes ``priority`` to (``DISPATCH_QUEUES``); None: the default."""
    return zhenzi_settings.DISPATCH_QUEUES.get(Priority(priority).word) or None


def hand_off(message_ids: Sequence[str], due_at: datetime, priority: int) -> None:
    """Enqueue tasks for these queued messages once the transaction commits (nothing with the
    built-in worker). A failure to enqueue is logged, never raised: the rows are committed and
    the sweep sends them."""
    enqueue = engine()
    if enqueue is None or not message_ids:
        return
    size = int(zhenzi_settings.DISPATCH_BATCH_SIZE)
    batches = [
        list(message_ids[start : start + size]) for start in range(0, len(message_ids), size)
    ]
    queue = queue_for(priority)

    def enqueue_all() -> None:
        for index, batch in enumerate(batches):
            try:
                enqueue(batch, due_at=due_at, queue=queue, priority=Priority(priority))
            except Exception:
                logger.exception(
                    "Could not hand %d queued messages to %s; the sweep will send them",
                    sum(len(rest) for rest in batches[index:]),
                    zhenzi_settings.DISPATCH,
                )
                return

    transaction.on_commit(enqueue_all, using=router.db_for_write(Message))


def hand_off_messages(messages: Sequence[Message], *, not_before: datetime | None = None) -> None:
    """``hand_off`` queued rows that may differ in priority and due time (never before
    ``not_before``, when given)."""
    groups: dict[tuple[datetime, int], list[str]] = {}
    for message in messages:
        due = message.next_attempt_at
        if not_before is not None and due < not_before:
            due = not_before
        groups.setdefault((due, message.priority), []).append(message.message_id)
    for (due_at, priority), message_ids in groups.items():
        hand_off(message_ids, due_at, priority)
