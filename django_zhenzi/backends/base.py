"""The interface every SMS backend implements, like Django's email backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from django_zhenzi.client import SmsRecord
from django_zhenzi.exceptions import OperationNotSupported

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11


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

    ``get_backend(path, **options)`` passes its options to ``__init__``: a backend taking options
    of its own takes them as keyword arguments and passes the rest on to this one, which refuses
    any left. A backend is a context manager that closes it.
    """

    def __init__(self, **options: Any) -> None:
        if options:
            # Names only: a value may be a secret given under a misspelt name.
            unknown = ", ".join(sorted(options))
            raise TypeError(f"{type(self).__qualname__} takes no option {unknown}.")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
