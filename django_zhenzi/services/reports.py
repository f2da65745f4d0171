"""Delivery reports: from the callback or from polling ``findSmsByMessageId``.

Every raw report is kept; a report moves its message forward by rank only (``advance``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.db.models import F, Q, QuerySet

from django_zhenzi import signals
from django_zhenzi.backends import OperationNotSupported, get_backend
from django_zhenzi.client import SmsRecord, ZhenziError
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import Message, Status, StatusReport, masked_payload
from django_zhenzi.services import clock, statements
from django_zhenzi.services.transitions import (
    advance,
    advance_many,
    announce_advance,
    serialized_writes,
    statuses_below,
)
from django_zhenzi.status import STATUS_RANK, delivery_status

logger = logging.getLogger("django_zhenzi")


@dataclass(frozen=True)
class ReportData:
    """One report as parsed from a callback body or a polled record."""

    message_id: str
    raw_status: str = ""
    number: str = ""
    payload: dict[str, Any] | None = None


def storable(message: Message | None, payload: dict[str, Any]) -> Any:
    """``payload`` (a report or a provider's record) as it may be stored for ``message``."""
    return masked_payload(payload) if message is not None and message.content_masked else payload


def apply_report(report: ReportData, *, source: str = StatusReport.Source.CALLBACK) -> StatusReport:
    """Store the report raw and move its message forward if it ranks higher (never back)."""
    return apply_reports([report], source=source)[0]


def apply_reports(
    reports: Sequence[ReportData], *, source: str = StatusReport.Source.CALLBACK
) -> list[StatusReport]:
    """Store the reports raw and move each message forward as far as they take it by rank
    (never back), in one transaction: the raw reports and the moves are kept together.

    A fixed number of statements whatever the count: one SELECT of the messages, locked, one
    INSERT of the reports, and one conditional UPDATE per reported status (usually one or two).
    Replayed, out-of-order and concurrent reports cannot move a status back; ``status_changed``
    fires once per real change. A report for an unknown messageId is stored as an orphan.
    """
    moment = clock.now()
    using = router.db_for_write(Message)
    if len(reports) == 1 and statements.supports_one_statement(using):
        return [apply_in_one_statement(reports[0], source, moment, using)]
    with serialized_writes(), transaction.atomic(using=using):
        messages = locked_messages({report.message_id for report in reports}, using)
        stored = [
            stored_report(report, messages.get(report.message_id), source, moment)
            for report in reports
        ]
        store(stored, using)
        for (status, raw_status), moving in moves(stored).items():
            advance_many(moving, status, raw_status, moment)
    return stored


def apply_in_one_statement(
    report: ReportData, source: str, moment: datetime, using: str
) -> StatusReport:
    """``apply_reports`` for one report, as one statement (``statements.store_and_advance``).

    Outside a transaction the statement is its own: one round trip to the database instead of
    five (BEGIN, SELECT, INSERT, UPDATE, COMMIT), which made most of a callback request's cost
    (a provider that reports one by one). The signals follow the commit there.
    """
    stored = stored_report(report, None, source, moment)
    payload = stored.payload
    below = statuses_below(stored.status) if stored.status else []
    message, moved = statements.store_and_advance(
        stored, masked_payload(payload), below, using, whole=receivers_connected()
    )
    if message is not None:
        stored.message, stored.payload = message, storable(message, payload)
        if moved:
            announce_advance(message, stored.status, stored.raw_status)
    return stored


def receivers_connected() -> bool:
    """Whether a receiver would be given a reported message (``status_changed``,
    ``message_sent``). Without one, reports read only the few columns of their messages they
    need (``statements.LEAN_FIELDS``): reading and converting every column of every message
    was a third of the CPU of storing a report."""
    return signals.status_changed.has_listeners(Message) or signals.message_sent.has_listeners(
        Message
    )


def locked_messages(message_ids: set[str], using: str) -> dict[str, Message]:
    """The messages with ``message_ids``, by messageId, their rows locked until the end of the
    transaction.

    Locked first: the reports' foreign keys would take a shared lock on them (MySQL/MariaDB),
    which two concurrent requests could not both upgrade. Several are locked in one order, so two
    requests with the same messages cannot deadlock. The statement is written once per
    connection (``services.statements``) where the module can.
    """
    if statements.supported(using):
        whole = receivers_connected()
        locked = statements.locked_messages(sorted(message_ids), using, whole=whole)
    else:
        locked = list(
            Message.objects.using(using)
            .select_for_update()
            .filter(message_id__in=message_ids)
            .order_by("pk")
        )
    return {message.message_id: message for message in locked}


def store(reports: list[StatusReport], using: str) -> None:
    """INSERT the reports (one statement), giving each its primary key where the database can."""
    if statements.supported(using) and (len(reports) == 1 or statements.inserts_many(using)):
        statements.insert_reports(reports, using)
    else:
        StatusReport.objects.using(using).bulk_create(reports)


def stored_report(
    report: ReportData, message: Message | None, source: str, moment: datetime
) -> StatusReport:
    return StatusReport(
        message=message,
        reported_message_id=report.message_id,
        number=report.number[:20],
        status=delivery_status(report.raw_status),
        raw_status=report.raw_status[:64],
        source=source,
        payload=storable(message, report.payload or {}),
        received_at=moment,
    )


def moves(reports: Sequence[StatusReport]) -> dict[tuple[str, str], list[Message]]:
    """The messages that ``reports``, applied in order, move forward, by (status, raw status)
    of the report that moves each furthest first."""
    reached: dict[int, tuple[str, str]] = {}
    messages: dict[int, Message] = {}
    for report in reports:
        message = report.message
        if message is None or not report.status:
            continue
        current = reached.get(message.pk, (message.status, ""))[0]
        if STATUS_RANK[report.status] > STATUS_RANK[current]:
            reached[message.pk] = (report.status, report.raw_status)
            messages[message.pk] = message
    grouped: dict[tuple[str, str], list[Message]] = {}
    for pk, target in reached.items():
        grouped.setdefault(target, []).append(messages[pk])
    return grouped


def link_orphan_reports() -> int:
    """Link reports that arrived before their message existed, and apply their status."""
    linked = 0
    # Only orphans whose message exists: others (another app's messages) would fill the batch.
    orphans = StatusReport.objects.filter(
        message__isnull=True, reported_message_id__in=Message.objects.values("message_id")
    ).order_by("received_at")
    by_id: dict[str, list[StatusReport]] = {}
    for orphan in orphans.only("id", "reported_message_id", "status", "raw_status")[:1000]:
        by_id.setdefault(orphan.reported_message_id, []).append(orphan)
    for message in Message.objects.filter(message_id__in=list(by_id)):
        reports = by_id[message.message_id]
        StatusReport.objects.filter(pk__in=[r.pk for r in reports]).update(message=message)
        linked += len(reports)
        for report in reports:
            if report.status:
                advance(message, report.status, report.raw_status, clock.now())
    return linked


def sync_statuses(*, older_than: float | None = None, limit: int = 500) -> int:
    """Poll ``findSmsByMessageId`` for sent messages with no final status after ``older_than``
    seconds (STATUS_SYNC_AFTER), applying what it says like a callback report. Returns how many
    messages got a final status.

    Each message remembers when it was polled; one still without a final status is asked again
    only once it is twice as old (the wait doubles), and the least recently polled go first, so
    messages the provider never reports cannot starve newer ones.
    """
    wait = float(zhenzi_settings.STATUS_SYNC_AFTER if older_than is None else older_than)
    moment = clock.now()
    link_orphan_reports()
    backend = get_backend()
    finished = 0
    pending = (
        Message.objects.filter(status=Status.SENT, sent_at__lte=moment - timedelta(seconds=wait))
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=moment))
        .order_by(F("next_poll_at").asc(nulls_first=True), "sent_at", "id")
    )
    for message in pending[:limit]:
        try:
            record = backend.find_message(message.message_id)
        except OperationNotSupported:
            return finished
        except ZhenziError as error:
            # A provider that is down fails every look-up alike: one timeout, not one per message.
            # This message waits its turn again, so one whose look-up always fails can't block.
            logger.warning("Status sync stopped at %s: %s", message.message_id, error)
            poll_later(message, timedelta(seconds=wait))
            return finished
        if apply_polled_record(message, record):
            finished += 1
        else:  # no final status yet: ask again once it is twice as old
            age = clock.now() - (message.sent_at or clock.now())
            poll_later(message, max(age, timedelta(seconds=wait)))
    return finished


def poll_later(message: Message, after: timedelta) -> None:
    """Remember that ``message`` was polled now, and ask again ``after`` that."""
    polled = clock.now()
    with serialized_writes():
        Message.objects.filter(pk=message.pk).update(polled_at=polled, next_poll_at=polled + after)


def apply_polled_record(message: Message, record: SmsRecord | None) -> bool:
    """Apply what ``findSmsByMessageId`` said of ``message`` as a polled report; True when it
    gave a final status."""
    if record is None or not delivery_status(record.status):
        return False
    apply_report(
        ReportData(message.message_id, record.status, record.number, dict(record.raw)),
        source=StatusReport.Source.POLL,
    )
    return True


#: Statuses for which the provider may still have news: sent, and not known whether sent.
AWAITING_REPORT = (Status.SENT, Status.UNKNOWN)


@dataclass
class RefreshResult:
    """What ``refresh_statuses`` did."""

    checked: int = 0  # the provider was asked about these
    finished: int = 0  # of those, the ones that got a final status
    skipped: int = 0  # not awaiting a report (never sent, or already final)
    not_checked: int = 0  # awaiting one, but past the limit or after the provider failed
    error: ZhenziError | None = None  # what stopped the pass early


def refresh_statuses(messages: QuerySet[Message], *, limit: int = 100) -> RefreshResult:
    """Ask ``findSmsByMessageId`` about the sent (or unknown) messages among ``messages``, at
    most ``limit`` of them, and apply what it says like a polled report.

    The first error stops the pass: a provider that is down or refuses the credentials fails
    every look-up alike, so it costs one timeout rather than one per message. May raise
    ImproperlyConfigured when the backend cannot be built.
    """
    awaiting = messages.filter(status__in=AWAITING_REPORT)
    waiting = awaiting.count()
    result = RefreshResult(skipped=messages.count() - waiting)
    candidates = list(awaiting.order_by("pk")[:limit])
    result.not_checked = waiting - len(candidates)
    backend = get_backend()
    for position, message in enumerate(candidates):
        try:
            record = backend.find_message(message.message_id)
        except ZhenziError as error:  # OperationNotSupported included
            result.error = error
            result.not_checked += len(candidates) - position
            break
        result.checked += 1
        result.finished += apply_polled_record(message, record)
    return result
