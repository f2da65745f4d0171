"""Sending claimed messages and recording what the provider said, by the outcome policy.

One path for every sender: ``send_batch`` serves the workers and send-now alike, so a batch of
any size and latency is sent under a renewed claim, stops at the first refusal of the account,
and records its successes in bulk.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django_zhenzi import signals
from django_zhenzi.backends import BaseSmsBackend, OutgoingSms, get_backend
from django_zhenzi.client import ZhenziAPIError, ZhenziError, ZhenziInputError
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import Message
from django_zhenzi.reasons import TEMPLATES, ErrorKind, Reason, no_reason
from django_zhenzi.services import clock
from django_zhenzi.services.claims import BatchClaim, claim_these, new_claim_token, release
from django_zhenzi.services.content import Content
from django_zhenzi.services.handoff import hand_off
from django_zhenzi.services.policy import Action, decide, retry_delay
from django_zhenzi.services.transitions import announce, move, move_many, serialized_writes
from django_zhenzi.status import SENT_STATUSES, Status

logger = logging.getLogger("django_zhenzi")

#: Why a code message is never sent a second time (the English text of its kind).
MASKED_NOT_RESENT = TEMPLATES[ErrorKind.MASKED_NOT_RESENT]


def outgoing_sms(message: Message, content: Content | None = None) -> OutgoingSms:
    """What to send for ``message``: its stored content, or ``content`` when given."""
    if content is None:
        params = message.template_params or []
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            reason = Reason.of(ErrorKind.BAD_TEMPLATE_PARAMS, params=repr(params))
            raise ZhenziInputError(
                reason.text, field="template_params", kind=reason.kind, params=reason.params
            )
        content = Content(
            text=message.text, template_id=message.template_id, template_params=tuple(params)
        )
    return OutgoingSms(
        number=message.number,
        message_id=message.message_id,
        text=content.text,
        template_id=content.template_id,
        template_params=content.template_params,
        client_ip=message.client_ip,
    )


# --- One message ----------------------------------------------------------------------------------


def send_claimed(
    message: Message,
    token: str,
    *,
    content: Content | None = None,
    sent: SentBuffer | None = None,
    backend: BaseSmsBackend | None = None,
) -> Action | None:
    """Send one message ``token`` has claimed and record the outcome; None when the provider
    accepted it, else what the policy did with it.

    ``content`` replaces the stored content (which is then a mask, see ``send_code_message``);
    without it a masked message fails rather than send its mask. A success is recorded at once,
    or handed to ``sent`` to be recorded with others in one UPDATE.

    ``backend`` (a caller's, for this send) replaces this thread's backend for the settings.
    """
    if content is None and message.content_masked:
        fail(message, token, Status.SENDING, None, Reason.of(ErrorKind.MASKED_NOT_RESENT))
        return Action.FAIL
    try:
        sender = get_backend() if backend is None else backend
        answer = sender.send(outgoing_sms(message, content))
    except ZhenziError as error:
        return record_error(message, token, error, given_backend=backend is not None)
    except Exception as error:  # a bug or a broken backend: this message fails alone
        logger.exception("Sending %s failed unexpectedly", message.message_id)
        fail(message, token, Status.SENDING, None, Reason.unexpected(error))
        return Action.FAIL
    if sent is not None:
        sent.add(message, answer)
        return None
    accepted = move(
        message,
        Status.SENT,
        expect=Status.SENDING,
        token=token,
        sent_at=clock.now(),
        provider_answer=answer,
        **no_reason(),
    )
    if not accepted:
        record_answer_after_report(message, token, answer)
    return None


def record_error(
    message: Message, token: str, error: ZhenziError, *, given_backend: bool = False
) -> Action:
    """Apply the policy's decision for ``error`` to a message being sent.

    Sent through a ``given_backend`` (a caller's), the message fails instead of going to the
    workers: they would retry, or reconcile, through the settings' backend, perhaps another
    account. One that may have been sent keeps its ``maybe_sent`` mark; a refusal of the
    account still answers PAUSE, so the batch stops there.
    """
    decision = decide(error)
    code = error.code if isinstance(error, ZhenziAPIError) else None
    reason = Reason.from_error(error)
    if given_backend and decision.action is not Action.FAIL:
        fail(message, token, Status.SENDING, code, reason, maybe_sent=decision.maybe_sent)
        return Action.PAUSE if decision.action is Action.PAUSE else Action.FAIL
    if decision.action is Action.RECONCILE:
        move(
            message,
            Status.UNKNOWN,
            expect=Status.SENDING,
            token=token,
            maybe_sent=decision.maybe_sent,
            next_attempt_at=clock.now() + timedelta(seconds=float(zhenzi_settings.RECONCILE_DELAY)),
            error_code=code,
            **reason.fields(),
        )
    elif decision.action is Action.PAUSE:
        pause(message, token, code, reason)
    elif decision.action is Action.RETRY:
        retry_or_fail(message, token, Status.SENDING, code, reason)
    else:
        fail(message, token, Status.SENDING, code, reason)
    return decision.action


def pause(message: Message, token: str, code: int | None, reason: Reason) -> None:
    """The account was refused: the message waits in the queue, the attempt not counted."""
    if message.content_masked:
        masked = Reason.of(ErrorKind.MASKED_AFTER_ERROR, reason=reason)
        fail(message, token, Status.SENDING, code, masked)
        return
    move(
        message,
        Status.QUEUED,
        expect=Status.SENDING,
        token=token,
        attempts=message.attempts - 1,
        next_attempt_at=clock.now(),
        error_code=code,
        **reason.fields(),
    )


def retry_or_fail(
    message: Message,
    token: str,
    from_status: str,
    code: int | None,
    reason: Reason,
    **changes: Any,
) -> None:
    if message.content_masked:
        masked = Reason.of(ErrorKind.MASKED_AFTER_ERROR, reason=reason)
        fail(message, token, from_status, code, masked, **changes)
    elif message.attempts >= int(zhenzi_settings.MAX_ATTEMPTS):
        gave_up = Reason.of(ErrorKind.GAVE_UP, count=message.attempts, reason=reason)
        fail(message, token, from_status, code, gave_up, **changes)
    else:
        retried = move(
            message,
            Status.QUEUED,
            expect=from_status,
            token=token,
            next_attempt_at=clock.now() + retry_delay(message.attempts),
            error_code=code,
            **reason.fields(),
            **changes,
        )
        if retried:
            hand_off([message.message_id], message.next_attempt_at, message.priority)


def fail(
    message: Message,
    token: str,
    from_status: str,
    code: int | None,
    reason: Reason,
    **changes: Any,
) -> None:
    move(
        message,
        Status.FAILED,
        expect=from_status,
        token=token,
        error_code=code,
        **reason.fields(),
        **changes,
    )


def record_answer_after_report(message: Message, token: str, answer: dict[str, Any]) -> bool:
    """A delivery report can overtake the provider's answer: the message was sent all the same."""
    overtaken = Message.objects.filter(
        pk=message.pk, claim_token=token, status__in=[Status.DELIVERED, Status.UNDELIVERED]
    )
    with serialized_writes():
        recorded = overtaken.update(provider_answer=answer, **no_reason())
    if not recorded:
        return False
    message.refresh_from_db(fields=["status", "sent_at", "provider_status", "status_changed_at"])
    message.provider_answer = answer
    signals.message_sent.send_robust(sender=Message, message=message)
    return True


class SentBuffer:
    """Successes of one batch, recorded together: one UPDATE for up to ``size`` messages, at
    most ``max_age`` seconds after the first of them was accepted.

    Their ``sent_at`` is the moment of that UPDATE. A sender that dies with successes still
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
        self.oldest = self.oldest or clock.now()
        if len(self.pending) >= self.size:
            self.flush()
        else:
            self.flush_if_old()

    def flush_if_old(self) -> None:
        if self.oldest is not None and clock.now() - self.oldest >= self.max_age:
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
        moment = clock.now()
        ids = [message.pk for message in messages]
        changes = {
            "sent_at": moment,
            "provider_answer": answer,
            **no_reason(),
        }
        moved = move_many(ids, Status.SENT, expect=Status.SENDING, token=self.token, **changes)
        recorded = set(ids)
        if moved < len(ids):
            # Some moved on meanwhile (a delivery report overtook the answer): find which.
            recorded = set(
                Message.objects.filter(
                    pk__in=ids, claim_token=self.token, status=Status.SENT, sent_at=moment
                ).values_list("pk", flat=True)
            )
        for message in messages:
            if message.pk in recorded:
                changes.update(status=Status.SENT, status_changed_at=moment)
                for name, value in changes.items():
                    setattr(message, name, value)
                announce(message, Status.SENDING, Status.SENT)
            else:
                record_answer_after_report(message, self.token, answer)


# --- A batch ----------------------------------------------------------------------------------


@dataclass
class PassResult:
    """What one pass (a worker's, or a send-now) did; ``zhenzi_send`` tallies its run with it."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    reconciled: int = 0
    expired_claims: int = 0
    claimed: int = 0
    #: Messages given back to the queue untried (a stop, or sending paused).
    released: int = 0
    #: Why sending paused: the provider refused the account (wrong secret, no balance...).
    paused: str = ""

    def add(self, other: PassResult) -> None:
        """Add ``other``'s counts (not its pause: whoever ends on a pause says so)."""
        for name in (
            "sent",
            "failed",
            "retried",
            "unknown",
            "reconciled",
            "expired_claims",
            "claimed",
            "released",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def count(self, message: Message) -> None:
        """Count ``message`` by where it stands after its attempt: sent, failed, back in the
        queue (``retried``), or anything else (``unknown``: its outcome is not known here)."""
        if message.status in SENT_STATUSES:
            self.sent += 1
        elif message.status == Status.FAILED:
            self.failed += 1
        elif message.status == Status.QUEUED:
            self.retried += 1
        else:
            self.unknown += 1


def send_batch(
    batch: Sequence[Message],
    token: str,
    *,
    stop: threading.Event | None = None,
    backend: BaseSmsBackend | None = None,
) -> PassResult:
    """Send a claimed batch in order under one renewed claim (through ``backend`` when given,
    see ``send_claimed``).

    What was not tried goes back to the queue when ``stop`` is set, and when the provider
    refuses the account itself (the policy's PAUSE): every further message would get the same
    refusal, so the pass ends with ``paused`` set instead. Through a caller's ``backend`` the
    untried rest fails with that refusal instead (the workers send only through the settings'
    backend), and each success is recorded at once rather than buffered, so a crash cannot
    leave an accepted message looking unsent.
    """
    result = PassResult(claimed=len(batch))
    claim_held = BatchClaim(token, batch)
    sent = SentBuffer(token) if backend is None else None
    tried: list[Message] = []
    try:
        for index, message in enumerate(batch):
            if stop is not None and stop.is_set():
                result.released += release(batch[index:], token)
                break
            if sent is not None:
                sent.flush_if_old()
            if not claim_held.holds(message):
                continue  # taken for a dead sender's: another worker reconciles it
            tried.append(message)
            if send_claimed(message, token, sent=sent, backend=backend) is Action.PAUSE:
                result.paused = message.error_text
                rest = batch[index + 1 :]
                if backend is None:
                    result.released += release(rest, token)
                else:
                    refusal = Reason(message.error_kind, message.error_params, message.error_text)
                    for untried in rest:
                        fail(untried, token, Status.SENDING, message.error_code, refusal)
                    tried.extend(rest)
                break
    finally:
        if sent is not None:
            sent.flush()
    for message in tried:
        result.count(message)
    return result


def send_now(message_ids: Sequence[str]) -> PassResult:
    """Claim the given queued messages, due or not, and send them in this thread."""
    token = new_claim_token()
    return send_batch(claim_these(message_ids, token), token)


def send_claimed_batch(
    message_ids: Sequence[str], token: str, backend: BaseSmsBackend
) -> PassResult:
    """Send the given messages, created already claimed by ``token``, through ``backend`` (a
    caller's) in this thread."""
    batch = Message.objects.filter(
        message_id__in=message_ids, claim_token=token, status=Status.SENDING
    ).order_by("id")
    return send_batch(list(batch), token, backend=backend)
