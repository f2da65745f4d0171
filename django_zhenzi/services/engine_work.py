"""What the task engines' tasks run (see ``handoff``): sending handed-off messages, and the
periodic sweep for what no task came for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db.models import Q

from django_zhenzi.backends import get_backend
from django_zhenzi.models import Message
from django_zhenzi.services import clock
from django_zhenzi.services.claims import (
    claim,
    claim_unknown,
    expire_stale_claims,
    new_claim_token,
)
from django_zhenzi.services.dispatch import PassResult, send_batch
from django_zhenzi.services.handoff import hand_off_messages
from django_zhenzi.services.reconcile import reconcile
from django_zhenzi.services.reports import sync_statuses
from django_zhenzi.status import Status

#: Seconds a due queued message waits for its task before the sweep sends it itself.
SWEEP_GRACE = 60.0
#: Seconds before a task comes again for messages another claim held when it ran.
LOCKED_RETRY = 1.0
#: The most messages one sweep sends (and reconciles); the next sweep goes on.
SWEEP_LIMIT = 500


def send_handed_off(message_ids: Sequence[str]) -> PassResult:
    """What a task runs: claim those of ``message_ids`` still queued and due, send them.

    A task never waits for a row lock (its twin, delivered twice, may hold the same rows). Those
    it leaves queued are handed off again rather than left to the sweep: for their due time
    when the task came early, a moment later when another claim held them (MySQL and MariaDB
    lock every row a claim's scan reads, not only the rows it takes)."""
    get_backend()  # a broken BACKEND setting raises here, before anything is claimed
    token = new_claim_token()
    named = list(message_ids)
    batch = claim(Q(message_id__in=named), token, limit=len(named))
    left = Message.objects.filter(message_id__in=named, status=Status.QUEUED).exclude(
        pk__in=[message.pk for message in batch]
    )
    hand_off_messages(
        list(left.only("message_id", "next_attempt_at", "priority")),
        not_before=clock.now() + timedelta(seconds=LOCKED_RETRY),
    )
    return send_batch(batch, token)


def sweep(*, limit: int = SWEEP_LIMIT, grace: float = SWEEP_GRACE) -> PassResult:
    """The periodic task: expire dead senders' claims, reconcile due ``unknown`` messages, send
    queued ones due for over ``grace`` seconds that no task came for, then poll the delivery
    status of sent messages without a report (``zhenzi_status --sync``)."""
    get_backend()
    result = PassResult(expired_claims=expire_stale_claims())
    token = new_claim_token()
    for message in claim_unknown(token, limit):
        reconcile(message, token)
        result.reconciled += 1
    left_behind = Q(next_attempt_at__lte=clock.now() - timedelta(seconds=grace))
    while result.claimed < limit:
        batch = claim(left_behind, token, limit=min(100, limit - result.claimed))
        if not batch:
            break
        sending = send_batch(batch, token)
        result.add(sending)
        if sending.paused:
            result.paused = sending.paused
            break
    sync_statuses(limit=limit)
    return result


def counts(result: PassResult) -> dict[str, Any]:
    """A task's return value: what it did, as JSON."""
    return {name: value for name, value in vars(result).items() if value}
