"""Creating messages: one row per number, sent at once after the commit or left to the queue."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction

from django_zhenzi.backends import BaseSmsBackend
from django_zhenzi.client import ZhenziInputError, check_number_characters, normalize_number
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import Message, Status, VerificationCode
from django_zhenzi.priority import Priority
from django_zhenzi.reasons import Reason
from django_zhenzi.services import clock
from django_zhenzi.services.claims import new_claim_token
from django_zhenzi.services.content import Content, as_number_list
from django_zhenzi.services.dispatch import send_claimed, send_claimed_batch, send_now
from django_zhenzi.services.handoff import hand_off
from django_zhenzi.services.transitions import announce_failure

_MAX_STORED_NUMBER = Message._meta.get_field("number").max_length


def create_messages(
    numbers: str | int | Iterable[str | int],
    content: Content,
    *,
    queue: bool,
    priority: Priority = Priority.NORMAL,
    backend: BaseSmsBackend | None = None,
) -> list[Message]:
    """One row per number, in order. A bad number in a batch gets a ``failed`` row with the
    reason and the others go on; a single bad number raises ZhenziInputError, storing nothing.

    Non-queued messages are sent once the surrounding transaction commits (at once outside one).
    Until then they are held back from workers for CLAIM_TIMEOUT, so a worker takes them only
    if this process dies before it sends them. Queued ones are handed to the task engine, if
    the site uses one, after the commit.

    ``backend`` (a caller's) sends them instead of the settings'. Those rows are created
    already claimed and marked ``external_backend``: no worker ever sends, retries or
    reconciles them through the settings' backend (perhaps another account); if this process
    dies before their outcome is recorded, their claim expires into a failure marked
    ``maybe_sent``, for a person to decide.
    """
    given = as_number_list(numbers)
    if not given:
        raise ZhenziInputError("No phone number given.", field="number")
    for raw in given:  # one that could not even be stored on a failed row refuses the batch
        check_number_characters(raw)
    moment = clock.now()
    due = moment if queue else moment + timedelta(seconds=float(zhenzi_settings.CLAIM_TIMEOUT))
    claimed = {}
    if backend is not None:
        token = new_claim_token()
        claimed = {
            "status": Status.SENDING,
            "claim_token": token,
            "claimed_at": moment,
            "attempts": 1,
            "external_backend": True,
        }
    rows: list[Message] = []
    for raw in given:
        row = Message(
            text=content.text,
            template_id=content.template_id,
            template_params=list(content.template_params),
            client_ip=content.client_ip,
            priority=priority,
            created_at=moment,
            next_attempt_at=due,
            status_changed_at=moment,
            **claimed,
        )
        try:
            row.number = normalize_number(raw)
        except ZhenziInputError as error:
            if len(given) == 1:
                raise
            row.number = str(raw)[:_MAX_STORED_NUMBER]
            row.status = Status.FAILED
            for name, value in Reason.from_error(error).fields().items():
                setattr(row, name, value)
        rows.append(row)
    Message.objects.bulk_create(rows)
    for row in rows:
        if row.status == Status.FAILED:
            announce_failure(row)
    queued = [row.message_id for row in rows if row.status == Status.QUEUED]
    if queue:
        hand_off(queued, due, priority)
    else:
        # bulk_create does not return primary keys on every database: look them up by messageId.
        if backend is None:
            transaction.on_commit(lambda: send_now(queued))
        else:
            claimed_ids = [row.message_id for row in rows if row.status == Status.SENDING]
            transaction.on_commit(lambda: send_claimed_batch(claimed_ids, token, backend))
    return rows


def send_code_message(code: VerificationCode, content: Content, masked: Content) -> Message:
    """Store ``masked`` as the message of ``code`` and send ``content`` (which holds the code)
    from memory once the transaction commits.

    The row is created already claimed (``sending``), so no worker can send it; it is linked to
    ``code`` in the same transaction and marked ``content_masked``: any later attempt
    (a retry, a reconciliation that finds it never arrived, a requeue) fails it with
    ``MASKED_NOT_RESENT`` instead of sending the mask. At most once, and never the mask.
    """
    moment = clock.now()
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
