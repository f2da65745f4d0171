"""Every error a caller of django-zhenzi catches, in one place. Importing it imports no Django.

::

    ZhenziError                      the base: catch it to catch them all (``.retryable``)
    ├── ZhenziInputError             input refused before any request; also a ValueError
    ├── ZhenziAPIError               the provider answered with a non-zero code (``.code``)
    ├── ZhenziTransportError         no usable answer; also a requests.RequestException
    │   ├── ZhenziNotSentError       the request never reached the provider: safe to retry
    │   └── ZhenziMaybeSentError     it may have been processed: look the message up first
    ├── RateLimited                  an abuse limit refused the send; nothing stored or sent
    ├── OperationNotSupported        the backend has no account (balance, message look-up)
    └── CallbackRefused              a delivery-report request the callback refuses; also a
        └── CallbackTooLarge         ValueError, with the HTTP ``status`` to answer (400, 413)

The client's errors are defined in ``django_zhenzi.client.errors`` (the client runs without
Django) and re-exported here. The others' older homes still give the same classes:
``django_zhenzi.services.limits.RateLimited``, ``django_zhenzi.verification.RateLimited``,
``django_zhenzi.backends.OperationNotSupported`` and ``django_zhenzi.webhooks.parser.RefusedBody``
/ ``BodyTooLarge`` (the callback's refusals under their first names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django_zhenzi.client.errors import (
    ZhenziAPIError,
    ZhenziError,
    ZhenziInputError,
    ZhenziMaybeSentError,
    ZhenziNotSentError,
    ZhenziTransportError,
)

if TYPE_CHECKING:
    from django.utils.functional import Promise

    from django_zhenzi.models import RateLimit

__all__ = [
    "CallbackRefused",
    "CallbackTooLarge",
    "OperationNotSupported",
    "RateLimited",
    "ZhenziAPIError",
    "ZhenziError",
    "ZhenziInputError",
    "ZhenziMaybeSentError",
    "ZhenziNotSentError",
    "ZhenziTransportError",
]


class RateLimited(ZhenziError):
    """A limit refused the send: nothing was stored or sent.

    ``limit`` names it (a :class:`~django_zhenzi.models.RateLimit`), ``subject`` is what it
    counts (the number, the client IP or network, ``""`` for the site) and ``retry_after`` the
    whole seconds until it allows a send again.
    """

    def __init__(self, limit: RateLimit, subject: str, retry_after: int) -> None:
        from django.utils.translation import gettext as _

        self.limit = limit
        self.subject = subject
        self.retry_after = retry_after
        super().__init__(
            _("Refused by the limit on {limit}; try again in {seconds} seconds.").format(
                limit=limit.label, seconds=retry_after
            )
        )


class OperationNotSupported(ZhenziError):
    """The backend has no account to ask (balance, message look-up)."""


class CallbackRefused(ZhenziError, ValueError):
    """A delivery-report request the callback refuses: ``status`` is the HTTP status to answer
    with and ``reason`` (perhaps lazily translated) the reason fit to answer with."""

    status = 400

    def __init__(self, reason: str | Promise) -> None:
        super().__init__(str(reason))
        self.reason = reason


class CallbackTooLarge(CallbackRefused):
    """The request's body is over ``CALLBACK_MAX_BODY``."""

    status = 413
