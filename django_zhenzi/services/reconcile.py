"""Reconciliation: settling a message whose attempt may or may not have reached the provider.

A message is ``unknown`` when its answer was lost (read timeout, 5xx, cut connection), when its
sender's claim expired, or when the provider refused its messageId as already used. It is never
resent blindly: ``findSmsByMessageId`` is asked after RECONCILE_DELAY and again, at growing
intervals, until the provider shows the message (it is ``sent``) or the outcome is older than
RECONCILE_SETTLE. Only then is "not found" believed, and the message queued again. A provider
that records a message later than RECONCILE_SETTLE after the attempt could still get a second
copy: that is the window's assumption, stated in docs/delivery.rst.

A refusal of a repeated messageId proves an earlier attempt arrived: such a message is never
resent nor failed; if the provider never shows it, it is taken as sent once settled.
"""

from __future__ import annotations

from datetime import timedelta

from django_zhenzi.backends import OperationNotSupported, get_backend
from django_zhenzi.client import ZhenziError
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import MaybeSent, Message, Status
from django_zhenzi.reasons import ErrorKind, Reason, no_reason
from django_zhenzi.services import clock
from django_zhenzi.services.dispatch import fail, retry_or_fail
from django_zhenzi.services.policy import retry_delay
from django_zhenzi.services.reports import storable
from django_zhenzi.services.transitions import move


def reconcile(message: Message, token: str) -> None:
    """Ask the provider whether an ``unknown`` message leased to ``token`` arrived, and settle
    it when the answer can be believed."""
    try:
        record = get_backend().find_message(message.message_id)
    except OperationNotSupported:
        no_lookup = Reason.of(ErrorKind.NO_LOOKUP)
        fail(message, token, Status.UNKNOWN, None, no_lookup)  # keeps "may have been sent"
        return
    except ZhenziError as error:
        failed = Reason.of(ErrorKind.LOOKUP_FAILED, reason=Reason.from_error(error))
        ask_again(message, token, retry_delay(message.attempts), failed)
        return
    moment = clock.now()
    if record is not None:
        move(
            message,
            Status.SENT,
            expect=Status.UNKNOWN,
            token=token,
            sent_at=record.create_time or moment,
            provider_answer={"findSmsByMessageId": storable(message, dict(record.raw))},
            maybe_sent=MaybeSent.NO,
            **no_reason(),
        )
        return
    unsettled_for = (moment - message.status_changed_at).total_seconds()
    settle = float(zhenzi_settings.RECONCILE_SETTLE)
    if unsettled_for < settle:
        # Not yet: the provider may still be recording it. Ask at doubling intervals, the last
        # time right at the window's end.
        wait = min(
            max(float(zhenzi_settings.RECONCILE_DELAY), unsettled_for), settle - unsettled_for
        )
        ask_again(message, token, timedelta(seconds=wait), None)
    elif message.maybe_sent == MaybeSent.DUPLICATE:
        move(
            message,
            Status.SENT,
            expect=Status.UNKNOWN,
            token=token,
            sent_at=moment,
            maybe_sent=MaybeSent.NO,
            error_code=None,
            **Reason.of(ErrorKind.DUPLICATE_TAKEN_AS_SENT).fields(),
        )
    else:
        never = Reason.of(ErrorKind.NEVER_RECEIVED)
        retry_or_fail(message, token, Status.UNKNOWN, None, never, maybe_sent=MaybeSent.NO)


def ask_again(message: Message, token: str, after: timedelta, reason: Reason | None) -> None:
    """Ask the provider again after ``after``; ``reason`` replaces the stored one if given."""
    changes = reason.fields() if reason is not None else {}
    move(
        message,
        Status.UNKNOWN,
        expect=Status.UNKNOWN,
        token=token,
        next_attempt_at=clock.now() + after,
        **changes,
    )
