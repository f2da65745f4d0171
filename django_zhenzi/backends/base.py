"""The interface every SMS backend implements, like Django's email backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from django_zhenzi.client import SmsRecord, ZhenziError


class OperationNotSupported(ZhenziError):
    """The backend has no account to ask (balance, message look-up)."""


@dataclass(frozen=True)
class OutgoingSms:
    """What a backend needs to send one message: free text, or a template and its parameters."""

    number: str
    message_id: str
    text: str = ""
    template_id: str = ""
    template_params: tuple[str, ...] = ()
    client_ip: str | None = None


class BaseSmsBackend:
    """Send a message, read the balance, look a message up.

    ``send`` returns the provider's answer (stored on the message) or raises a
    :class:`~django_zhenzi.client.ZhenziError`; its subclass tells whether the message may have
    gone out. Backends without an account raise :class:`OperationNotSupported` from the others.
    """

    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        raise NotImplementedError

    def balance(self) -> int:
        raise OperationNotSupported(
            _("%(backend)s has no account balance.") % {"backend": type(self).__module__}
        )

    def find_message(self, message_id: str) -> SmsRecord | None:
        raise OperationNotSupported(
            _("%(backend)s cannot look messages up.") % {"backend": type(self).__module__}
        )

    def close(self) -> None:
        """Release connections; the backend may be used again afterwards."""
