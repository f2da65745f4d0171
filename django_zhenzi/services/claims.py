"""Claims: which sender may act on a message, for how long.

A claim marks rows ``sending`` with a token in a short transaction
(``select_for_update(skip_locked=True)``, so many workers on many hosts share one queue); the
HTTP calls happen outside any transaction, and every later move is conditional on the token.
A claim held past ``CLAIM_TIMEOUT`` is taken for a dead sender's: its messages become
``unknown`` and are reconciled, never resent blindly.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections, router, transaction
from django.db.models import F, Q

from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import MaybeSent, Message, Status
from django_zhenzi.reasons import ErrorKind, Reason
from django_zhenzi.services import clock, statements
from django_zhenzi.services.transitions import (
    announce_failure,
    check_move,
    move_many,
    serialized_writes,
)

#: The order senders take due messages in: the most urgent first, then the longest due
#: (served by the index ``zhenzi_msg_claim_idx``).
CLAIM_ORDER = ("priority", "next_attempt_at", "id")


def new_claim_token() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _lock_ids(rows: Q, status: str, limit: int) -> list[int]:
    """Ids of up to ``limit`` rows in ``status`` matching ``rows``, locked for this
    transaction; rows another transaction holds are skipped."""
    return list(
        Message.objects.select_for_update(skip_locked=True)
        .filter(rows, status=status)
        .order_by(*CLAIM_ORDER)
        .values_list("id", flat=True)[:limit]
    )


def claim(rows: Q, token: str, *, limit: int, due_only: bool = True) -> list[Message]:
    """Claim up to ``limit`` queued messages matching ``rows`` (only those due, unless
    ``due_only`` is false) for ``token``: they become ``sending`` and count an attempt."""
    moment = clock.now()
    if due_only:
        rows &= Q(next_attempt_at__lte=moment)
    using = router.db_for_write(Message)
    if statements.supports_one_statement(using):
        return _claim_in_one_statement(rows, token, limit, moment, using)
    with serialized_writes(), transaction.atomic():
        ids = _lock_ids(rows, Status.QUEUED, limit)
        _mark_claimed(ids, token, moment)
    return _claimed(ids, token)


def _claim_in_one_statement(
    rows: Q, token: str, limit: int, moment: datetime, using: str
) -> list[Message]:
    """``claim`` on PostgreSQL: the locking SELECT inside the UPDATE that claims what it picks
    (``statements.claim_queued``): one round trip, the rows read once."""
    picked = (
        Message.objects.using(using)
        .filter(rows, status=Status.QUEUED)
        .order_by(*CLAIM_ORDER)
        .values("id")[:limit]
    )
    # Locked by hand: the ORM refuses select_for_update() outside a transaction, and this
    # statement is its own.
    select, params = picked.query.sql_with_params()
    lock = connections[using].ops.for_update_sql(skip_locked=True)
    changes = {
        "status": Status.SENDING,
        "status_changed_at": clock.now(),
        "claim_token": token,
        "claimed_at": moment,
    }
    check_move(Status.QUEUED, Status.SENDING)
    claimed = statements.claim_queued((f"{select} {lock}", params), changes, using)
    return sorted(claimed, key=lambda message: tuple(getattr(message, f) for f in CLAIM_ORDER))


def claim_these(message_ids: Sequence[str], token: str) -> list[Message]:
    """Claim the named messages that are still queued, due or not, waiting for a claim that
    holds one of them instead of skipping it.

    For a send-now. A worker's claim (``SKIP LOCKED``) may hold rows it only examined: MySQL
    and MariaDB lock every row an index scan reads. Skipping those would leave the sender's
    messages queued until CLAIM_TIMEOUT. Waiting cannot deadlock: the sender is the only one
    that names these rows, and the others (workers, tasks) never wait.
    """
    moment = clock.now()
    named = Message.objects.filter(message_id__in=list(message_ids), status=Status.QUEUED)
    with serialized_writes(), transaction.atomic():
        ids = list(named.select_for_update().order_by("message_id").values_list("id", flat=True))
        _mark_claimed(ids, token, moment)
    return _claimed(ids, token)


def _mark_claimed(ids: list[int], token: str, moment: datetime) -> None:
    """Mark the locked queued rows ``ids`` claimed by ``token`` (in the caller's transaction)."""
    if ids:
        move_many(
            ids,
            Status.SENDING,
            expect=Status.QUEUED,
            claim_token=token,
            claimed_at=moment,
            attempts=F("attempts") + 1,
        )


def _claimed(ids: list[int], token: str) -> list[Message]:
    """The rows of ``ids`` that ``token`` claimed, in claim order."""
    if not ids:
        return []
    claimed = Message.objects.filter(id__in=ids, claim_token=token, status=Status.SENDING)
    return list(claimed.order_by(*CLAIM_ORDER))


def claim_cutoff(moment: datetime) -> datetime:
    """Claims taken before this, at ``moment``, are past CLAIM_TIMEOUT: a dead sender's."""
    return moment - timedelta(seconds=float(zhenzi_settings.CLAIM_TIMEOUT))


def claim_due(token: str, limit: int) -> list[Message]:
    return claim(Q(), token, limit=limit)


def count_due(limit: int) -> int:
    """How many queued messages are due now, counting no further than ``limit``."""
    due = Message.objects.filter(status=Status.QUEUED, next_attempt_at__lte=clock.now())
    return due[:limit].count()


@dataclass(frozen=True)
class QueueLook:
    """What a worker's pass has to do: ``due`` queued messages (counted no further than
    asked), claims past CLAIM_TIMEOUT to expire, ``unknown`` messages due to reconcile."""

    due: int
    stale_claims: bool
    unknown_due: bool


def look_at_queue(due_limit: int) -> QueueLook:
    """The queue as a worker's pass starts, in one query (``statements.look_at_queue``) where
    the database has it."""
    moment = clock.now()
    stale_before = claim_cutoff(moment)
    using = router.db_for_write(Message)  # where claims are taken, not a replica that lags
    if statements.supported(using):
        return QueueLook(*statements.look_at_queue(moment, stale_before, due_limit, using))
    rows = Message.objects.using(using)
    return QueueLook(
        due=count_due(due_limit),
        stale_claims=rows.filter(status=Status.SENDING, claimed_at__lt=stale_before).exists(),
        unknown_due=rows.filter(status=Status.UNKNOWN, next_attempt_at__lte=moment).exists(),
    )


def claim_unknown(token: str, limit: int) -> list[Message]:
    """Lease due ``unknown`` messages to ``token`` for reconciliation; they stay ``unknown``
    (so ``status_changed_at`` keeps when their outcome became unsettled)."""
    moment = clock.now()
    lease_until = moment + timedelta(seconds=float(zhenzi_settings.CLAIM_TIMEOUT))
    with serialized_writes(), transaction.atomic():
        ids = _lock_ids(Q(next_attempt_at__lte=moment), Status.UNKNOWN, limit)
        if not ids:
            return []
        move_many(
            ids,
            Status.UNKNOWN,
            expect=Status.UNKNOWN,
            claim_token=token,
            claimed_at=moment,
            next_attempt_at=lease_until,
        )
    return list(Message.objects.filter(id__in=ids, claim_token=token, status=Status.UNKNOWN))


def release(messages: Sequence[Message], token: str) -> int:
    """Give claimed messages that were not tried back to the queue, due now, the attempt not
    counted (a clean stop, or sending paused for the account)."""
    return move_many(
        [message.pk for message in messages],
        Status.QUEUED,
        expect=Status.SENDING,
        token=token,
        attempts=F("attempts") - 1,
        claim_token="",
        claimed_at=None,
        next_attempt_at=clock.now(),
    )


def expire_stale_claims() -> int:
    """Claims held past CLAIM_TIMEOUT (the sender died or hung): their messages become
    ``unknown``, to be reconciled now. A message sent through a caller's backend fails instead,
    marked ``maybe_sent``: only that backend could say whether it arrived."""
    moment = clock.now()
    cutoff = claim_cutoff(moment)
    stale = Message.objects.filter(status=Status.SENDING, claimed_at__lt=cutoff)
    rows = list(stale.values_list("id", "external_backend")[:1000])
    if not rows:
        return 0
    expired = Reason.of(ErrorKind.CLAIM_EXPIRED).fields()
    not_renewed = Q(claimed_at__lt=cutoff)
    external = [pk for pk, external_backend in rows if external_backend]
    moved = move_many(
        [pk for pk, external_backend in rows if not external_backend],
        Status.UNKNOWN,
        expect=Status.SENDING,
        maybe_sent=MaybeSent.CLAIM_EXPIRED,
        next_attempt_at=moment,
        where=not_renewed,
        **expired,
    )
    if external:
        moved += move_many(
            external,
            Status.FAILED,
            expect=Status.SENDING,
            maybe_sent=MaybeSent.CLAIM_EXPIRED,
            where=not_renewed,
            **expired,
        )
        failed = Message.objects.filter(
            pk__in=external, status=Status.FAILED, status_changed_at__gte=moment
        )
        for message in failed:
            announce_failure(message)
    return moved


class BatchClaim:
    """A sender's claim on its batch, renewed as a whole once it gets old.

    A claim dates from its batch's start: a batch slower than CLAIM_TIMEOUT (a worker's, or a
    send-now of many numbers) would otherwise look like a dead sender's, and its later messages
    be reconciled and sent by a worker while this sender still sends them. Renewing every row
    still held once the claim is older than half the slack between CLAIM_TIMEOUT and one
    request (2 x TIMEOUT) keeps every request inside its claim, at no cost for a fast batch.
    """

    def __init__(self, token: str, messages: Sequence[Message]) -> None:
        self.token = token
        self.since = min((m.claimed_at for m in messages if m.claimed_at), default=clock.now())
        self.held = {message.pk for message in messages}
        slack = float(zhenzi_settings.CLAIM_TIMEOUT) - 2 * float(zhenzi_settings.TIMEOUT)
        self.renew_after = timedelta(seconds=max(slack, 0) / 2)

    def holds(self, message: Message) -> bool:
        """Whether this sender may still send ``message`` (renewing the claim when due)."""
        moment = clock.now()
        if moment - self.since >= self.renew_after:
            ours = Message.objects.filter(claim_token=self.token, status=Status.SENDING)
            with serialized_writes():
                ours.update(claimed_at=moment)
            self.held = set(ours.values_list("pk", flat=True))
            self.since = moment
        return message.pk in self.held
