"""The use cases: queue, send one, claim and send a batch, retry and reconcile, read the balance.

Every entry point (the Python API, the commands, the admin) calls these; nothing else talks to the
backend. The rules they keep (DESIGN.md, "Message life"):

- a message is sent at most once: an outcome that may mean "sent" (read timeout, 5xx, cut
  connection, a claim held past ``CLAIM_TIMEOUT``) makes it ``unknown``, and it is only resent
  after ``findSmsByMessageId`` says the provider never got it;
- claims are short transactions (``select_for_update(skip_locked=True)``) that mark rows
  ``sending`` with a claim token; the HTTP call happens outside any transaction, and every later
  update is conditional on that token, so a worker that lost its claim changes nothing;
- one bad message fails alone, with its reason; the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from django_zhenzi import signals
from django_zhenzi.backends import OperationNotSupported, OutgoingSms, get_backend
from django_zhenzi.client import (
    ACCOUNT_ERROR_CODES,
    SmsRecord,
    ZhenziAPIError,
    ZhenziError,
    ZhenziInputError,
    ZhenziTransportError,
    normalize_number,
    validate_client_ip,
    validate_message,
    validate_template_id,
    validate_template_params,
)
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import (
    FINAL_STATUSES,
    SENT_STATUSES,
    STATUS_RANK,
    BalanceSnapshot,
    Message,
    RateCounter,
    RateLimitRefusal,
    Status,
    StatusReport,
    VerificationCode,
    masked_payload,
)
from django_zhenzi.reports import delivery_status

logger = logging.getLogger("django_zhenzi")

_MAX_STORED_NUMBER = Message._meta.get_field("number").max_length


def now() -> datetime:
    """The services' clock (tests move it)."""
    return timezone.now()


# --- Creating messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """Validated content shared by every message of one send: text, or template and params."""

    text: str = ""
    template_id: str = ""
    template_params: tuple[str, ...] = ()
    client_ip: str | None = None


def validate_content(
    message: str | None,
    template_id: str | int | None,
    template_params: Sequence[str] | None,
    client_ip: str | None,
) -> Content:
    """Check the content once for a whole send; raises ZhenziInputError."""
    ip = validate_client_ip(client_ip) if client_ip not in (None, "") else None
    if template_id not in (None, ""):
        if message not in (None, ""):
            raise ZhenziInputError(
                "Give either a message text or a template, not both.", field="message"
            )
        return Content(
            template_id=validate_template_id(template_id),
            template_params=tuple(validate_template_params(template_params or [])),
            client_ip=ip,
        )
    if template_params:
        raise ZhenziInputError("Template parameters need a template id.", field="template_id")
    return Content(text=validate_message(message), client_ip=ip)  # type: ignore[arg-type]


def as_number_list(numbers: str | int | Iterable[str | int]) -> list[str | int]:
    if isinstance(numbers, (str, int)):
        return [numbers]
    return list(numbers)


def create_messages(
    numbers: str | int | Iterable[str | int], content: Content, *, queue: bool
) -> list[Message]:
    """One row per number, in order. A bad number in a batch gets a ``failed`` row with the
    reason and the others go on; a single bad number raises ZhenziInputError, storing nothing.

    Non-queued messages are sent once the surrounding transaction commits (at once outside one).
    """
    given = as_number_list(numbers)
    if not given:
        raise ZhenziInputError("No phone number given.", field="number")
    moment = now()
    rows: list[Message] = []
    for raw in given:
        row = Message(
            text=content.text,
            template_id=content.template_id,
            template_params=list(content.template_params),
            client_ip=content.client_ip,
            created_at=moment,
            next_attempt_at=moment,
            status_changed_at=moment,
        )
        try:
            row.number = normalize_number(raw)
        except ZhenziInputError as error:
            if len(given) == 1:
                raise
            row.number = str(raw)[:_MAX_STORED_NUMBER]
            row.status = Status.FAILED
            row.error_text = str(error)
        rows.append(row)
    Message.objects.bulk_create(rows)
    for row in rows:
        if row.status == Status.FAILED:
            signals.message_failed.send_robust(sender=Message, message=row, reason=row.error_text)
    if not queue:
        # bulk_create does not return primary keys on every database: look them up by messageId.
        message_ids = [row.message_id for row in rows if row.status == Status.QUEUED]
        transaction.on_commit(lambda: send_now(message_ids))
    return rows


def send_now(message_ids: Sequence[str]) -> None:
    """Claim the given queued messages and send them in this thread."""
    token = new_claim_token()
    for message in claim(Q(message_id__in=message_ids), token, limit=len(message_ids)):
        send_claimed(message, token)


#: Seconds a ``--loop`` worker waits after the provider refused the account (wrong appSecret,
#: app disabled, IP not whitelisted...) before it tries again.
ACCOUNT_ERROR_PAUSE = 60.0

#: Why a code message is never sent a second time.
MASKED_NOT_RESENT = (
    "Not sent again: the verification code it carried was kept only in memory; request a new code."
)


def send_code_message(code: VerificationCode, content: Content, masked: Content) -> Message:
    """Store ``masked`` as the message of ``code`` and send ``content`` (which holds the code)
    from memory once the transaction commits.

    The row is created already claimed (``sending``), so no worker can send it; it is linked to
    ``code`` in the same transaction and marked ``content_masked``: any later attempt
    (a retry, a reconciliation that finds it never arrived, a requeue) fails it with
    ``MASKED_NOT_RESENT`` instead of sending the mask. At most once, and never the mask.
    """
    moment = now()
    token = new_claim_token()
    with transaction.atomic():
        message = Message.objects.create(
            number=code.number,
            text=masked.text,
            template_id=masked.template_id,
            template_params=list(masked.template_params),
            client_ip=masked.client_ip,
            content_masked=True,
            status=Status.SENDING,
            claim_token=token,
            claimed_at=moment,
            attempts=1,
            created_at=moment,
            next_attempt_at=moment,
            status_changed_at=moment,
        )
        code.sms = message
        code.save(update_fields=["sms"])
        transaction.on_commit(lambda: send_claimed(message, token, content=content))
    return message


def _storable(message: Message | None, payload: dict[str, Any]) -> Any:
    """``payload`` (a report or a provider's record) as it may be stored for ``message``."""
    return masked_payload(payload) if message is not None and message.content_masked else payload


# --- Claiming ------------------------------------------------------------------------------------


def new_claim_token() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def claim(condition: Q, token: str, *, limit: int) -> list[Message]:
    """Mark up to ``limit`` due queued rows matching ``condition`` as ``sending`` for this token.

    Locked rows are skipped, so many workers can claim from one queue; the update is also
    conditional on the status, which keeps it safe on databases without row locks (SQLite).
    """
    moment = now()
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(condition, status=Status.QUEUED, next_attempt_at__lte=moment)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        Message.objects.filter(id__in=ids, status=Status.QUEUED).update(
            status=Status.SENDING,
            claim_token=token,
            claimed_at=moment,
            attempts=F("attempts") + 1,
            status_changed_at=moment,
        )
    claimed = Message.objects.filter(id__in=ids, claim_token=token, status=Status.SENDING)
    return list(claimed.order_by("next_attempt_at", "id"))


def claim_due(token: str, limit: int) -> list[Message]:
    return claim(Q(), token, limit=limit)


# --- Sending one claimed message -----------------------------------------------------------------


def outgoing(message: Message, content: Content | None = None) -> OutgoingSms:
    """What to send for ``message``: its stored content, or ``content`` when given."""
    if content is None:
        content = Content(
            text=message.text,
            template_id=message.template_id,
            template_params=tuple(message.template_params or ()),
        )
    return OutgoingSms(
        number=message.number,
        message_id=message.message_id,
        text=content.text,
        template_id=content.template_id,
        template_params=content.template_params,
        client_ip=message.client_ip,
    )


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: half the step fixed, half random."""
    base = float(zhenzi_settings.RETRY_DELAY)
    step = min(float(zhenzi_settings.RETRY_MAX_DELAY), base * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=step / 2 + (rng or random).uniform(0, step / 2))


def _move(message: Message, token: str, from_status: str, **changes: Any) -> bool:
    """Apply ``changes`` if the row is still ours and in ``from_status``; mirror them on it."""
    moment = now()
    changes.setdefault("status_changed_at", moment)
    updated = Message.objects.filter(pk=message.pk, claim_token=token, status=from_status).update(
        **changes
    )
    if updated:
        old_status = message.status
        for name, value in changes.items():
            setattr(message, name, value)
        if changes.get("status", old_status) != old_status:
            signals.status_changed.send_robust(
                sender=Message, message=message, old_status=old_status, new_status=message.status
            )
    return bool(updated)


class BatchClaim:
    """A worker's claim on its batch, renewed as a whole once it gets old.

    A claim dates from its batch's start: a batch slower than CLAIM_TIMEOUT would otherwise look
    like a dead worker's, and its later messages be reconciled and sent by another worker while
    this one still sends them. Renewing every row still held once the claim is older than half
    the slack between CLAIM_TIMEOUT and one request (2 x TIMEOUT) keeps every request inside its
    claim, at no cost for the usual fast batch.
    """

    def __init__(self, token: str, messages: Sequence[Message]) -> None:
        self.token = token
        self.since = min((m.claimed_at for m in messages if m.claimed_at), default=now())
        self.held = {message.pk for message in messages}

    def holds(self, message: Message) -> bool:
        """Whether this worker may still send ``message`` (renewing the claim when due)."""
        moment = now()
        slack = float(zhenzi_settings.CLAIM_TIMEOUT) - 2 * float(zhenzi_settings.TIMEOUT)
        if moment - self.since >= timedelta(seconds=max(slack, 0) / 2):
            ours = Message.objects.filter(claim_token=self.token, status=Status.SENDING)
            ours.update(claimed_at=moment)
            self.held = set(ours.values_list("pk", flat=True))
            self.since = moment
        return message.pk in self.held


def send_claimed(
    message: Message,
    token: str,
    *,
    content: Content | None = None,
    sent: SentBuffer | None = None,
) -> Message:
    """Send one message this worker has claimed and record the outcome.

    ``content`` replaces the stored content (which is then a mask, see ``send_code_message``);
    without it a masked message fails rather than send its mask. A success is recorded at once,
    or handed to ``sent`` to be recorded with others in one UPDATE.
    """
    if content is None and message.content_masked:
        _fail(message, token, Status.SENDING, None, MASKED_NOT_RESENT)
        return message
    try:
        answer = get_backend().send(outgoing(message, content))
    except ZhenziError as error:
        _record_error(message, token, error)
    except Exception as error:  # a bug or a broken backend: this message fails alone
        logger.exception("Sending %s failed unexpectedly", message.message_id)
        _fail(message, token, Status.SENDING, None, f"{type(error).__name__}: {error}")
    else:
        if sent is not None:
            sent.add(message, answer)
            return message
        moment = now()
        if _move(
            message,
            token,
            Status.SENDING,
            status=Status.SENT,
            sent_at=moment,
            provider_answer=answer,
            error_code=None,
            error_text="",
        ) or _record_answer_after_report(message, token, answer):
            signals.message_sent.send_robust(sender=Message, message=message)
    return message


class SentBuffer:
    """Successes of one worker's batch, recorded together: one UPDATE for up to ``size``
    messages, at most ``max_age`` seconds after the first of them was accepted.

    Their ``sent_at`` is the moment of that UPDATE. A worker that dies with successes still
    buffered leaves them ``sending``: once their claim expires, reconciliation finds them at the
    provider and marks them sent, never resends them.
    """

    def __init__(self, token: str, *, size: int = 50, max_age: float = 1.0) -> None:
        self.token = token
        self.size = size
        self.max_age = timedelta(seconds=max_age)
        self.pending: list[tuple[Message, dict[str, Any]]] = []
        self.oldest: datetime | None = None

    def add(self, message: Message, answer: dict[str, Any]) -> None:
        self.pending.append((message, answer))
        self.oldest = self.oldest or now()
        if len(self.pending) >= self.size:
            self.flush()
        else:
            self.flush_if_old()

    def flush_if_old(self) -> None:
        if self.oldest is not None and now() - self.oldest >= self.max_age:
            self.flush()

    def flush(self) -> None:
        groups: dict[str, list[Message]] = {}
        answers: dict[str, dict[str, Any]] = {}
        for message, answer in self.pending:
            key = json.dumps(answer, sort_keys=True, default=str)
            groups.setdefault(key, []).append(message)
            answers[key] = answer
        self.pending, self.oldest = [], None
        for key, messages in groups.items():
            self._record(messages, answers[key])

    def _record(self, messages: list[Message], answer: dict[str, Any]) -> None:
        moment = now()
        ids = [message.pk for message in messages]
        changes = {
            "status": Status.SENT,
            "sent_at": moment,
            "provider_answer": answer,
            "error_code": None,
            "error_text": "",
            "status_changed_at": moment,
        }
        ours = Message.objects.filter(pk__in=ids, claim_token=self.token)
        recorded = set(ids)
        if ours.filter(status=Status.SENDING).update(**changes) < len(ids):
            # Some moved on meanwhile (a delivery report overtook the answer): find which.
            recorded = set(
                ours.filter(status=Status.SENT, sent_at=moment).values_list("pk", flat=True)
            )
        for message in messages:
            if message.pk in recorded:
                for name, value in changes.items():
                    setattr(message, name, value)
                signals.status_changed.send_robust(
                    sender=Message,
                    message=message,
                    old_status=Status.SENDING,
                    new_status=Status.SENT,
                )
            elif not _record_answer_after_report(message, self.token, answer):
                continue
            signals.message_sent.send_robust(sender=Message, message=message)


def _record_answer_after_report(message: Message, token: str, answer: dict[str, Any]) -> bool:
    """A delivery report can overtake the provider's answer: the message was sent all the same."""
    overtaken = Message.objects.filter(
        pk=message.pk, claim_token=token, status__in=[Status.DELIVERED, Status.UNDELIVERED]
    )
    if not overtaken.update(provider_answer=answer, error_code=None, error_text=""):
        return False
    message.refresh_from_db(fields=["status", "sent_at", "provider_status", "status_changed_at"])
    message.provider_answer = answer
    return True


def _record_error(message: Message, token: str, error: ZhenziError) -> None:
    code = error.code if isinstance(error, ZhenziAPIError) else None
    text = str(error)
    if isinstance(error, ZhenziTransportError) and error.maybe_sent:
        _move(
            message,
            token,
            Status.SENDING,
            status=Status.UNKNOWN,
            next_attempt_at=now() + timedelta(seconds=float(zhenzi_settings.RECONCILE_DELAY)),
            error_code=None,
            error_text=text,
        )
    elif error.retryable:
        _retry_or_fail(message, token, Status.SENDING, code, text)
    else:
        _fail(message, token, Status.SENDING, code, text)


def _retry_or_fail(
    message: Message, token: str, from_status: str, code: int | None, text: str
) -> None:
    if message.content_masked:
        _fail(message, token, from_status, code, f"{MASKED_NOT_RESENT} ({text})")
        return
    if message.attempts >= int(zhenzi_settings.MAX_ATTEMPTS):
        _fail(
            message, token, from_status, code, f"Gave up after {message.attempts} attempts: {text}"
        )
        return
    _move(
        message,
        token,
        from_status,
        status=Status.QUEUED,
        next_attempt_at=now() + retry_delay(message.attempts),
        error_code=code,
        error_text=text,
    )


def _fail(message: Message, token: str, from_status: str, code: int | None, text: str) -> None:
    if _move(message, token, from_status, status=Status.FAILED, error_code=code, error_text=text):
        signals.message_failed.send_robust(sender=Message, message=message, reason=text)


# --- Ambiguous outcomes --------------------------------------------------------------------------


def expire_stale_claims() -> int:
    """Claims held past CLAIM_TIMEOUT (the worker died or hung) become ``unknown``."""
    moment = now()
    cutoff = moment - timedelta(seconds=float(zhenzi_settings.CLAIM_TIMEOUT))
    return Message.objects.filter(status=Status.SENDING, claimed_at__lt=cutoff).update(
        status=Status.UNKNOWN,
        next_attempt_at=moment,
        error_text="The claim expired before an answer was recorded.",
        status_changed_at=moment,
    )


def claim_unknown(token: str, limit: int) -> list[Message]:
    """Lease due ``unknown`` rows to this worker for reconciliation (status stays ``unknown``)."""
    moment = now()
    lease_until = moment + timedelta(seconds=float(zhenzi_settings.CLAIM_TIMEOUT))
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(status=Status.UNKNOWN, next_attempt_at__lte=moment)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        Message.objects.filter(
            id__in=ids, status=Status.UNKNOWN, next_attempt_at__lte=moment
        ).update(claim_token=token, claimed_at=moment, next_attempt_at=lease_until)
    return list(Message.objects.filter(id__in=ids, claim_token=token, status=Status.UNKNOWN))


def reconcile(message: Message, token: str) -> Message:
    """Ask the provider whether an ``unknown`` message arrived; resend only if it did not."""
    try:
        record = get_backend().find_message(message.message_id)
    except OperationNotSupported:
        _fail(message, token, Status.UNKNOWN, None, "The backend cannot look messages up.")
        return message
    except ZhenziError as error:
        _move(
            message,
            token,
            Status.UNKNOWN,
            next_attempt_at=now() + retry_delay(message.attempts),
            error_text=f"Reconciliation failed, will ask again: {error}",
        )
        return message
    if record is None:
        _retry_or_fail(message, token, Status.UNKNOWN, None, "The provider never received it.")
        return message
    if _move(
        message,
        token,
        Status.UNKNOWN,
        status=Status.SENT,
        sent_at=record.create_time or now(),
        provider_answer={"findSmsByMessageId": _storable(message, dict(record.raw))},
        error_code=None,
        error_text="",
    ):
        signals.message_sent.send_robust(sender=Message, message=message)
    return message


# --- A worker pass -------------------------------------------------------------------------------


@dataclass
class PassResult:
    """What one pass over the queue did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    reconciled: int = 0
    expired_claims: int = 0
    claimed: int = 0
    #: Why the pass stopped early: the provider refused the account (wrong secret, ...).
    halted: str = ""

    def add(self, other: PassResult) -> None:
        for name in ("sent", "failed", "retried", "unknown", "reconciled", "expired_claims"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.claimed += other.claimed
        self.halted = self.halted or other.halted

    def count(self, message: Message) -> None:
        if message.status in SENT_STATUSES:
            attribute = "sent"
        else:
            attribute = {
                Status.FAILED: "failed",
                Status.QUEUED: "retried",
                Status.UNKNOWN: "unknown",
            }.get(message.status)
        if attribute:
            setattr(self, attribute, getattr(self, attribute) + 1)


def work_batch(*, batch_size: int = 100, stop: threading.Event | None = None) -> PassResult:
    """One step of one worker: expire stale claims, reconcile a batch of ``unknown`` messages,
    then claim and send a batch of due ones.

    Claimed messages not yet tried go back to the queue when ``stop`` is set, and when the
    provider refuses the account itself (``ACCOUNT_ERROR_CODES``): every further message would
    fail the same way, so the pass ends with ``halted`` set instead.
    """
    get_backend()  # a broken BACKEND setting raises here, before anything is claimed
    result = PassResult(expired_claims=expire_stale_claims())
    token = new_claim_token()
    for message in claim_unknown(token, batch_size):
        if stop is not None and stop.is_set():
            break
        reconcile(message, token)
        result.reconciled += 1
    batch = claim_due(token, batch_size)
    result.claimed = len(batch)
    claim_held = BatchClaim(token, batch)
    sent = SentBuffer(token)
    tried: list[Message] = []
    try:
        for index, message in enumerate(batch):
            if stop is not None and stop.is_set():
                release(batch[index:], token)
                break
            sent.flush_if_old()
            if not claim_held.holds(message):
                continue  # taken for a dead worker's: another worker reconciles it
            tried.append(send_claimed(message, token, sent=sent))
            if message.status == Status.FAILED and message.error_code in ACCOUNT_ERROR_CODES:
                result.halted = message.error_text
                release(batch[index + 1 :], token)
                break
    finally:
        sent.flush()
    for message in tried:
        result.count(message)
    return result


def release(messages: Sequence[Message], token: str) -> int:
    """Give claimed, not yet attempted messages back to the queue (a clean shutdown)."""
    return Message.objects.filter(
        pk__in=[m.pk for m in messages], claim_token=token, status=Status.SENDING
    ).update(status=Status.QUEUED, attempts=F("attempts") - 1, claim_token="", claimed_at=None)


def run_workers(
    *,
    concurrency: int = 1,
    batch_size: int = 100,
    limit: int | None = None,
    loop: bool = False,
    idle_wait: float = 1.0,
    stop: threading.Event | None = None,
    on_batch: Callable[[PassResult], None] | None = None,
) -> PassResult:
    """Send due messages with ``concurrency`` threads, each with its own database connection.

    Without ``loop`` it returns once nothing is due (or ``limit`` messages were claimed); with it,
    it waits ``idle_wait`` seconds when idle and runs until ``stop`` is set. With a concurrency
    of 1 the work runs in the caller's thread (and transaction).
    """
    stop = stop or threading.Event()
    total = PassResult()
    lock = threading.Lock()
    budget = [limit]

    def take(wanted: int) -> int:
        with lock:
            if budget[0] is None:
                return wanted
            granted = min(wanted, budget[0])
            budget[0] -= granted
            return granted

    errors: list[BaseException] = []

    def work() -> None:
        while not stop.is_set():
            room = take(batch_size)
            if room <= 0:
                return
            try:
                result = work_batch(batch_size=room, stop=stop)
            except Exception:
                with lock:
                    if budget[0] is not None:
                        budget[0] += room
                if not loop:
                    raise
                # A database or configuration failure: its claims are reconciled once they
                # expire. Say so, wait, and go on rather than let the worker die quietly.
                logger.exception("A worker pass failed; trying again in %s s", idle_wait)
                stop.wait(idle_wait)
                continue
            with lock:
                total.add(result)
                if budget[0] is not None:
                    budget[0] += room - result.claimed
            if on_batch is not None:
                on_batch(result)
            if result.halted:
                logger.error("The provider refused the account: %s", result.halted)
                if not loop:
                    return
                stop.wait(ACCOUNT_ERROR_PAUSE)
            elif result.claimed == 0 and result.reconciled == 0:
                if not loop:
                    return
                stop.wait(idle_wait)

    def work_in_thread() -> None:
        try:
            work()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()  # this thread's connections only

    if concurrency <= 1:
        work()
        return total
    threads = [
        threading.Thread(target=work_in_thread, name=f"zhenzi-worker-{n}")
        for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return total


# --- Balance -------------------------------------------------------------------------------------


def read_balance(*, record: bool = True) -> int:
    """The live balance from the provider, recorded as a snapshot."""
    balance = get_backend().balance()
    if record:
        BalanceSnapshot.objects.create(balance=balance, recorded_at=now())
    return balance


# --- Status reports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    """One report as parsed from a callback body or a polled record."""

    message_id: str
    raw_status: str = ""
    number: str = ""
    payload: dict[str, Any] | None = None


def statuses_below(status: str) -> list[str]:
    rank = STATUS_RANK[status]
    return [name for name, other in STATUS_RANK.items() if other < rank]


def apply_report(report: ReportData, *, source: str = StatusReport.Source.CALLBACK) -> StatusReport:
    """Store the report raw and move its message forward if it ranks higher (never back).

    The move is one conditional UPDATE, so replayed and out-of-order reports, even concurrent
    ones, cannot move a status back; ``status_changed`` fires once per real change.
    """
    moment = now()
    status = delivery_status(report.raw_status)
    message = Message.objects.filter(message_id=report.message_id).first()
    stored = StatusReport.objects.create(
        message=message,
        reported_message_id=report.message_id,
        number=report.number[:20],
        status=status,
        raw_status=report.raw_status[:64],
        source=source,
        payload=_storable(message, report.payload or {}),
        received_at=moment,
    )
    if message is not None and status:
        _advance(message, status, report.raw_status[:64], moment)
    return stored


def _advance(message: Message, status: str, raw_status: str, moment: datetime) -> bool:
    updated = Message.objects.filter(pk=message.pk, status__in=statuses_below(status)).update(
        status=status,
        provider_status=raw_status,
        status_changed_at=moment,
        sent_at=Coalesce(F("sent_at"), Value(moment)),
    )
    if updated:
        old_status = message.status
        message.status, message.provider_status = status, raw_status
        signals.status_changed.send_robust(
            sender=Message, message=message, old_status=old_status, new_status=status
        )
        if old_status in (Status.QUEUED, Status.UNKNOWN, Status.FAILED):
            # Nothing else said it was sent: the report proves it.
            signals.message_sent.send_robust(sender=Message, message=message)
    return bool(updated)


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
                _advance(message, report.status, report.raw_status, now())
    return linked


def sync_statuses(*, older_than: float | None = None, limit: int = 500) -> int:
    """Poll ``findSmsByMessageId`` for sent messages with no final status after ``older_than``
    seconds (STATUS_SYNC_AFTER), applying what it says like a callback report. Returns how many
    messages got a final status."""
    wait = float(zhenzi_settings.STATUS_SYNC_AFTER if older_than is None else older_than)
    cutoff = now() - timedelta(seconds=wait)
    link_orphan_reports()
    backend = get_backend()
    finished = 0
    pending = Message.objects.filter(status=Status.SENT, sent_at__lte=cutoff).order_by("sent_at")
    for message in pending[:limit]:
        try:
            record = backend.find_message(message.message_id)
        except OperationNotSupported:
            return finished
        except ZhenziError as error:
            # A provider that is down fails every look-up alike: one timeout, not one per message.
            logger.warning("Status sync stopped at %s: %s", message.message_id, error)
            return finished
        finished += apply_polled_record(message, record)
    return finished


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


# --- For the admin: counts, resending, refreshing, a cached balance ------------------------------


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


def requeue_failed(messages: QuerySet[Message]) -> tuple[int, int]:
    """Queue the ``failed`` messages among ``messages`` again; returns (requeued, skipped).

    A message is failed only when the provider refused it or never got it, so sending it again
    cannot make a duplicate; it keeps its messageId and its attempt count. Rows are locked and
    moved with a conditional update, so a row that changed meanwhile is skipped. Verification
    code messages are skipped: their code was never stored, so they cannot be sent again.
    """
    total = messages.count()
    failed = messages.filter(status=Status.FAILED, content_masked=False)
    failed_ids = list(failed.values_list("pk", flat=True))
    requeued = 0
    for start in range(0, len(failed_ids), REQUEUE_CHUNK_SIZE):
        chunk = failed_ids[start : start + REQUEUE_CHUNK_SIZE]
        moment = now()
        with transaction.atomic():
            rows = list(
                Message.objects.select_for_update().filter(pk__in=chunk, status=Status.FAILED)
            )
            Message.objects.filter(pk__in=[row.pk for row in rows], status=Status.FAILED).update(
                status=Status.QUEUED,
                next_attempt_at=moment,
                claim_token="",
                claimed_at=None,
                status_changed_at=moment,
            )
        for row in rows:
            row.status, row.next_attempt_at, row.status_changed_at = Status.QUEUED, moment, moment
            signals.status_changed.send_robust(
                sender=Message, message=row, old_status=Status.FAILED, new_status=Status.QUEUED
            )
        requeued += len(rows)
    return requeued, total - requeued


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


@dataclass(frozen=True)
class BalanceReading:
    """A balance as the provider gave it, when, and whether it came from the cache."""

    balance: int
    read_at: datetime
    cached: bool


def cached_balance(*, refresh: bool = False) -> BalanceReading:
    """The live balance, asked of the provider (and recorded as a snapshot) at most once per
    BALANCE_CACHE_SECONDS, kept in Django's cache; ``refresh`` asks now. Errors are not kept.
    """
    key = balance_cache_key()
    if not refresh:
        kept = cache.get(key)
        if kept is not None:
            return BalanceReading(balance=kept[0], read_at=kept[1], cached=True)
    balance = read_balance(record=True)
    read_at = now()
    seconds = float(zhenzi_settings.BALANCE_CACHE_SECONDS)
    if seconds > 0:
        cache.set(key, (balance, read_at), seconds)
    return BalanceReading(balance=balance, read_at=read_at, cached=False)


def balance_cache_key() -> str:
    """One cache entry per account and backend; the key is a hash that leaves out the secret."""
    identity = f"{zhenzi_settings.BACKEND}|{zhenzi_settings.API_URL}|{zhenzi_settings.APP_ID}"
    return "django_zhenzi:balance:" + hashlib.sha256(identity.encode()).hexdigest()[:32]


# --- Configuration, look-ups and clean-up (for the management commands) ---------------------------


def check_backend() -> None:
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


def delete_old_messages(
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
    cutoff = now() - timedelta(days=days)
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
