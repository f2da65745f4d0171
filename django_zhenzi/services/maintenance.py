"""Operators' tools: counts and resends for the admin, look-ups and clean-up for the commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet

from django_zhenzi.backends import get_backend
from django_zhenzi.client import SmsRecord, ZhenziError
from django_zhenzi.models import (
    BalanceSnapshot,
    MaybeSent,
    Message,
    RateCounter,
    RateLimitRefusal,
    Status,
    StatusReport,
    VerificationCode,
)
from django_zhenzi.services import clock
from django_zhenzi.services.handoff import hand_off_messages
from django_zhenzi.services.transitions import announce, move_many, serialized_writes
from django_zhenzi.status import FINAL_STATUSES


def status_counts(since: datetime) -> dict[str, int]:
    """How many messages created since ``since`` are in each status: one GROUP BY query."""
    rows = (
        Message.objects.filter(created_at__gte=since)
        .order_by()
        .values("status")
        .annotate(count=Count("id"))
    )
    return {row["status"]: row["count"] for row in rows}


#: Rows requeued per statement, so a selection of any size stays within SQL parameter limits.
REQUEUE_CHUNK_SIZE = 500


@dataclass(frozen=True)
class RequeueResult:
    """What ``requeue_failed`` did with a selection."""

    requeued: int
    #: Not failed, or a verification code's message (its code was never stored).
    skipped: int
    #: Failed, but may have been sent: held back without the explicit confirmation.
    maybe_sent: int


def requeue_failed(
    messages: QuerySet[Message], *, confirm_maybe_sent: bool = False
) -> RequeueResult:
    """Queue the ``failed`` messages among ``messages`` again.

    A failed message was refused by the provider or never reached it, so sending it again makes
    no duplicate, except one marked "may have been sent" (its outcome was never settled): those
    are held back unless ``confirm_maybe_sent`` (a person's explicit confirmation, under its own
    permission). A message keeps its messageId and its attempt count. Rows are locked and moved
    with a conditional update, so a row that changed meanwhile is skipped. Verification code
    messages are skipped: their code was never stored, so they cannot be sent again.
    """
    total = messages.count()
    failed = messages.filter(status=Status.FAILED, content_masked=False)
    held_back = 0
    if not confirm_maybe_sent:
        held_back = failed.exclude(maybe_sent=MaybeSent.NO).count()
        failed = failed.filter(maybe_sent=MaybeSent.NO)
    failed_ids = list(failed.values_list("pk", flat=True))
    requeued = 0
    for start in range(0, len(failed_ids), REQUEUE_CHUNK_SIZE):
        chunk = failed_ids[start : start + REQUEUE_CHUNK_SIZE]
        moment = clock.now()
        with serialized_writes(), transaction.atomic():
            rows = list(
                Message.objects.select_for_update().filter(pk__in=chunk, status=Status.FAILED)
            )
            move_many(
                [row.pk for row in rows],
                Status.QUEUED,
                expect=Status.FAILED,
                next_attempt_at=moment,
                claim_token="",
                claimed_at=None,
                maybe_sent=MaybeSent.NO,
                external_backend=False,  # resent by the workers, through the settings' backend
            )
        for row in rows:
            row.status, row.next_attempt_at, row.status_changed_at = Status.QUEUED, moment, moment
            announce(row, Status.FAILED, Status.QUEUED)
        hand_off_messages(rows)
        requeued += len(rows)
    return RequeueResult(requeued, total - requeued - held_back, held_back)


def validate_backend_settings() -> None:
    """Build the configured backend now, so a configuration mistake shows before anything is
    stored. Raises ImproperlyConfigured; makes no provider call."""
    get_backend()


@dataclass(frozen=True)
class MessageLookup:
    """What is known of one messageId: the local row (None when unknown here) and, when the
    provider was asked, its record (None when it knows no such messageId) or the error."""

    message_id: str
    message: Message | None
    asked_provider: bool = False
    record: SmsRecord | None = None
    provider_error: ZhenziError | None = None


def look_up_message(message_id: str, *, ask_provider: bool = True) -> MessageLookup:
    """The local row of ``message_id`` and the provider's record of it; changes nothing."""
    message = Message.objects.filter(message_id=message_id).first()
    if not ask_provider:
        return MessageLookup(message_id, message)
    try:
        record = get_backend().find_message(message_id)
    except ZhenziError as error:  # OperationNotSupported and a malformed messageId included
        return MessageLookup(message_id, message, asked_provider=True, provider_error=error)
    return MessageLookup(message_id, message, asked_provider=True, record=record)


#: Statuses whose messages may be deleted once old: nothing more will happen to them.
DELETABLE_STATUSES = FINAL_STATUSES | {Status.SENT}


@dataclass
class CleanupResult:
    """How many rows a clean-up deleted (or would delete)."""

    messages: int = 0
    reports: int = 0
    orphan_reports: int = 0
    balance_snapshots: int = 0
    verification_codes: int = 0
    rate_limit_rows: int = 0


def delete_history_older_than(
    days: int, *, dry_run: bool = False, chunk_size: int = 1000
) -> CleanupResult:
    """Delete messages created more than ``days`` days ago that are sent, delivered, undelivered
    or failed, with their status reports, and orphan reports, balance snapshots, verification
    codes (expired by then) and rate-limit rows (counters and refusals) older than that. Queued,
    sending and unknown messages are never deleted.

    Rows go ``chunk_size`` ids per DELETE, each in its own short transaction, so a big table is
    never locked for long. ``dry_run`` only counts.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days!r}")
    cutoff = clock.now() - timedelta(days=days)
    old_messages = Message.objects.filter(created_at__lt=cutoff, status__in=DELETABLE_STATUSES)
    orphans = StatusReport.objects.filter(message__isnull=True, received_at__lt=cutoff)
    snapshots = BalanceSnapshot.objects.filter(recorded_at__lt=cutoff)
    codes = VerificationCode.objects.filter(expires_at__lt=cutoff)
    # Every limit's window is at most a day long: rows older than the cutoff count nothing.
    counters = RateCounter.objects.filter(window_start__lt=cutoff)
    refusals = RateLimitRefusal.objects.filter(hour__lt=cutoff)
    if dry_run:
        return CleanupResult(
            messages=old_messages.count(),
            reports=StatusReport.objects.filter(message__in=old_messages).count(),
            orphan_reports=orphans.count(),
            balance_snapshots=snapshots.count(),
            verification_codes=codes.count(),
            rate_limit_rows=counters.count() + refusals.count(),
        )
    deleted = _delete_in_chunks(old_messages, chunk_size)
    return CleanupResult(
        messages=deleted.get(Message._meta.label, 0),
        reports=deleted.get(StatusReport._meta.label, 0),
        orphan_reports=_count_deleted(orphans, chunk_size),
        balance_snapshots=_count_deleted(snapshots, chunk_size),
        verification_codes=_count_deleted(codes, chunk_size),
        rate_limit_rows=_count_deleted(counters, chunk_size) + _count_deleted(refusals, chunk_size),
    )


def _count_deleted(queryset: Any, chunk_size: int) -> int:
    """Delete ``queryset`` in chunks; how many of its own rows went."""
    return _delete_in_chunks(queryset, chunk_size).get(queryset.model._meta.label, 0)


def _delete_in_chunks(queryset: Any, chunk_size: int) -> dict[str, int]:
    """Delete the rows of ``queryset`` (and their cascades) ``chunk_size`` ids at a time."""
    label = queryset.model._meta.label
    totals: dict[str, int] = {}
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:chunk_size])
        if not ids:
            return totals
        # The filter is applied again: a row that changed since it was picked stays.
        _, per_model = queryset.filter(pk__in=ids).delete()
        for model_label, count in per_model.items():
            totals[model_label] = totals.get(model_label, 0) + count
        if not per_model.get(label):
            return totals  # every picked row changed meanwhile: stop rather than spin
