"""Where a message stands: its statuses, their ranks, and what the provider's status words mean.

The provider has not published its report format (see ``API-NOTES.md``); the delivery words below
are the ones its ``findSmsByMessageId`` sample and other Chinese SMS providers use. Anything else
is kept raw and changes no status.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    DELIVERED = "delivered", _("delivered")
    UNDELIVERED = "undelivered", _("undelivered")
    FAILED = "failed", _("failed")
    UNKNOWN = "unknown", _("unknown (being reconciled)")


class MaybeSent(models.TextChoices):
    """Why a message may have reached the provider although no answer said so."""

    NO = "", _("no")
    NO_ANSWER = "no_answer", _("the provider's answer was lost")
    CLAIM_EXPIRED = "claim_expired", _("its sender stopped before recording an answer")
    DUPLICATE = "duplicate", _("the provider refused its messageId as already used")


#: Statuses move forward only. ``failed`` and ``unknown`` sit beside the main line: a report of
#: delivery still wins over them, since it proves the message went out.
STATUS_RANK: dict[str, int] = {
    Status.QUEUED: 0,
    Status.UNKNOWN: 1,
    Status.SENDING: 1,
    Status.FAILED: 2,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.UNDELIVERED: 3,
}
FINAL_STATUSES = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED})
#: The provider accepted the message (whatever its delivery report says).
SENT_STATUSES = frozenset({Status.SENT, Status.DELIVERED, Status.UNDELIVERED})


DELIVERED_WORDS = frozenset({"success", "delivered", "delivrd", "0", "ok"})
UNDELIVERED_WORDS = frozenset(
    {
        "fail",
        "failed",
        "failure",
        "undelivered",
        "undeliv",
        "expired",
        "rejectd",
        "rejected",
        "deleted",
    }
)


def delivery_status(word: object) -> str:
    """``delivered``, ``undelivered``, or ``""`` when the word is not understood."""
    normalized = str(word).strip().lower() if word is not None else ""
    if normalized in DELIVERED_WORDS:
        return Status.DELIVERED
    if normalized in UNDELIVERED_WORDS:
        return Status.UNDELIVERED
    return ""
