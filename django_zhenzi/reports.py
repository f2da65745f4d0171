"""What a delivery status word means. Shared by the callback and by polling.

The provider has not published its report format (see ``API-NOTES.md``); the words below are the
ones its ``findSmsByMessageId`` sample and other Chinese SMS providers use. Anything else is kept
raw and changes no status.
"""

from __future__ import annotations

from django_zhenzi.models import Status

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
