"""What went wrong, for an operator, in the page's language: provider error codes explained, and
errors raised while talking to Zhenzi. Stored failures render themselves from their error kind
(``Message.error_reason``, see ``django_zhenzi.reasons``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import ZhenziAPIError, ZhenziError, ZhenziTransportError
from django_zhenzi.reasons import ErrorKind, Reason, explain_code

__all__ = [
    "describe_error",
    "describe_unreachable",
    "explain_code",
    "explain_code_sentence",
]


def explain_code_sentence(code: int) -> str:
    """A provider error code's meaning and hint as one text, punctuated for the language."""
    meaning, hint = explain_code(code)
    return _("%(meaning)s. %(hint)s") % {"meaning": meaning, "hint": hint}


def describe_error(error: Exception) -> str:
    """What went wrong talking to Zhenzi, for an operator. Error texts never hold the app
    secret: the client removes it from everything it raises."""
    if isinstance(error, ZhenziAPIError) and error.kind == ErrorKind.PROVIDER_ERROR:
        meaning, hint = explain_code(error.code)
        return _("Zhenzi refused the request with error %(code)s: %(meaning)s. %(hint)s") % {
            "code": error.code,
            "meaning": meaning,
            "hint": hint,
        }
    if isinstance(error, OperationNotSupported):
        return _("The configured SMS backend has no Zhenzi account to ask (%(detail)s).") % {
            "detail": error
        }
    if isinstance(error, ZhenziTransportError):
        unreachable = describe_unreachable(error.kind, error.params)
        if unreachable is not None:
            return unreachable
        return _("Zhenzi could not be reached or gave no usable answer: %(detail)s") % {
            "detail": Reason.from_error(error).render()
        }
    if isinstance(error, ImproperlyConfigured):
        return _("Zhenzi is not configured: %(detail)s") % {"detail": error}
    if isinstance(error, ZhenziError):
        return Reason.from_error(error).render()
    raise TypeError(f"not an error about Zhenzi: {type(error).__name__}")


def describe_unreachable(kind: str, params: Mapping[str, Any]) -> str | None:
    """A connection the client could not open, said with what to check; None for any other
    error kind. Only a send's kind (``not_sent``) says that nothing was sent: a balance read or a
    status look-up has nothing to send."""
    if kind == ErrorKind.NOT_SENT:
        problem = _("Zhenzi could not be reached at %(url)s, nothing was sent (%(detail)s).")
    elif kind == ErrorKind.UNREACHABLE:
        problem = _("Zhenzi could not be reached at %(url)s (%(detail)s).")
    else:
        return None
    hint = _(
        "Check ZHENZI['API_URL']: is the server it names running and reachable from here? For "
        "the bundled sandbox, start it with manage.py zhenzi_sandbox."
    )
    return _("%(problem)s %(hint)s") % {
        "problem": problem % {"url": params.get("url", ""), "detail": params.get("detail", "")},
        "hint": hint,
    }
