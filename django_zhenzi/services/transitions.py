"""Every change of a message's status, in one place.

A change is one conditional UPDATE: it applies only if the row is still in the status the caller
saw (and, for a sender, still under its claim), so two actors can never both move one message,
and a worker that lost its claim changes nothing. Sending moves follow ``MOVES``; delivery reports
move by rank instead (``advance``), so a replayed or late report never moves a status back.
Signals fire here, once per real change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce

from django_zhenzi import signals
from django_zhenzi.models import Message
from django_zhenzi.services import clock, statements
from django_zhenzi.status import STATUS_RANK, Status

#: The moves of a message's sending life (DESIGN.md, "Message life"); any other is a bug.
MOVES: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.SENDING}),
    Status.SENDING: frozenset({Status.SENT, Status.QUEUED, Status.FAILED, Status.UNKNOWN}),
    # unknown -> unknown: a reconciliation that will ask again, or a lease to reconcile.
    Status.UNKNOWN: frozenset({Status.UNKNOWN, Status.SENT, Status.QUEUED, Status.FAILED}),
    Status.FAILED: frozenset({Status.QUEUED}),  # an operator's resend
}

_sqlite_writes = threading.RLock()


@contextmanager
def serialized_writes() -> Iterator[None]:
    """On SQLite, let one thread of this process write at a time.

    SQLite has one writer per database; a deferred transaction that read and then wants to
    write fails at once with "database is locked" when another connection writes, whatever the
    busy timeout. Worker threads of one process take turns here instead; other processes are
    the job of ``transaction_mode: IMMEDIATE`` (system check W030). Elsewhere: no lock.

    A thread already inside a transaction takes no turn: it may hold the database's write lock,
    and waiting here for a thread that waits for that lock would deadlock them both.
    """
    connection = connections[router.db_for_write(Message)]
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        with _sqlite_writes:
            yield
    else:
        yield


def check_move(from_status: str, to_status: str) -> None:
    if to_status not in MOVES.get(from_status, frozenset()):
        raise ValueError(f"a message cannot move from {from_status} to {to_status}")


def move(
    message: Message, to_status: str, *, expect: str, token: str | None = None, **changes: Any
) -> bool:
    """Move ``message`` from ``expect`` to ``to_status`` with ``changes`` if it is still there
    (and still claimed by ``token`` when given); mirror the changes on it. True if it moved."""
    check_move(expect, to_status)
    if to_status != expect:
        changes.update(status=to_status, status_changed_at=clock.now())
    rows = Message.objects.filter(pk=message.pk, status=expect)
    if token is not None:
        rows = rows.filter(claim_token=token)
    with serialized_writes():
        moved = rows.update(**changes)
    if moved:
        for name, value in changes.items():
            setattr(message, name, value)
        announce(message, expect, to_status)
    return bool(moved)


def move_many(
    ids: Sequence[int],
    to_status: str,
    *,
    expect: str,
    token: str | None = None,
    where: Q | None = None,
    **changes: Any,
) -> int:
    """``move`` for many rows in one UPDATE, without signals (claims, releases, expiries, bulk
    successes: their callers announce what needs it); ``where`` narrows the rows further.
    Returns how many moved."""
    check_move(expect, to_status)
    if to_status != expect:
        changes.update(status=to_status, status_changed_at=clock.now())
    rows = Message.objects.filter(pk__in=ids, status=expect)
    if token is not None:
        rows = rows.filter(claim_token=token)
    if where is not None:
        rows = rows.filter(where)
    with serialized_writes():
        return rows.update(**changes)


def announce(message: Message, old_status: str, new_status: str) -> None:
    """The signals of one real move: status_changed, then message_sent or message_failed."""
    if old_status == new_status:
        return
    signals.status_changed.send_robust(
        sender=Message, message=message, old_status=old_status, new_status=new_status
    )
    if new_status == Status.SENT:
        signals.message_sent.send_robust(sender=Message, message=message)
    elif new_status == Status.FAILED:
        announce_failure(message)


def announce_failure(message: Message) -> None:
    """``message_failed``: the reason in the active language, and its kind and parameters."""
    signals.message_failed.send_robust(
        sender=Message,
        message=message,
        reason=message.error_reason,
        kind=message.error_kind,
        params=message.error_params,
    )


def statuses_below(status: str) -> list[str]:
    rank = STATUS_RANK[status]
    return [name for name, other in STATUS_RANK.items() if other < rank]


def advance(message: Message, status: str, raw_status: str, moment: datetime) -> bool:
    """Move ``message`` to a reported final ``status`` if that ranks above where it is."""
    return bool(advance_many([message], status, raw_status, moment))


def advance_many(
    messages: Sequence[Message], status: str, raw_status: str, moment: datetime
) -> int:
    """``advance`` for many messages in one UPDATE; ``status_changed`` (and ``message_sent``, if
    nothing else said it was sent) for each that moved. Returns how many moved.

    A caller that locked the rows (``select_for_update``) knows which will move; without locks
    the UPDATE's condition still decides, and the rows it moved are read back.
    """
    ids = [message.pk for message in messages]
    using = router.db_for_write(Message)
    with serialized_writes():
        if statements.supported(using):
            below = statuses_below(status)
            moved = statements.advance_rows(ids, status, raw_status, moment, below, using)
        else:
            moved = (
                Message.objects.using(using)
                .filter(pk__in=ids, status__in=statuses_below(status))
                .update(
                    status=status,
                    provider_status=raw_status,
                    status_changed_at=moment,
                    sent_at=Coalesce(F("sent_at"), Value(moment)),
                    maybe_sent="",
                )
            )
    if not moved:
        return 0
    moved_ids = set(ids)
    if moved < len(ids):
        moved_ids = set(
            Message.objects.filter(pk__in=ids, status=status, status_changed_at=moment).values_list(
                "pk", flat=True
            )
        )
    for message in messages:
        if message.pk in moved_ids:
            announce_advance(message, status, raw_status)
    return moved


def announce_advance(message: Message, status: str, raw_status: str) -> None:
    """The signals of a report's move of ``message`` (as it was before) to ``status``; the move
    is mirrored on it."""
    old_status = message.status
    message.status, message.provider_status = status, raw_status
    signals.status_changed.send_robust(
        sender=Message, message=message, old_status=old_status, new_status=status
    )
    if old_status in (Status.QUEUED, Status.UNKNOWN, Status.FAILED):
        # Nothing else said it was sent: the report proves it.
        signals.message_sent.send_robust(sender=Message, message=message)
