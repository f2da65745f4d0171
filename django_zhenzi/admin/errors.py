"""What went wrong, for an operator, in the page's language: provider error codes explained, errors
raised while talking to Zhenzi, and the failure reasons the services store."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import Promise
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import ZhenziAPIError, ZhenziError, ZhenziTransportError, explain
from django_zhenzi.services import MASKED_NOT_RESENT


def chinese_active() -> bool:
    """Whether the page is being rendered in Chinese (zh-hans, or any other zh variant)."""
    return (get_language() or "").lower().startswith("zh")


def explain_code(code: int) -> tuple[str, str]:
    """A provider error code's meaning and hint, in Chinese when the page is."""
    explanation = explain(code)
    if chinese_active():
        return explanation.meaning_zh, explanation.hint_zh
    return explanation.meaning, explanation.hint


def explain_code_sentence(code: int) -> str:
    """A provider error code's meaning and hint as one text, punctuated for the language."""
    meaning, hint = explain_code(code)
    return _("%(meaning)s. %(hint)s") % {"meaning": meaning, "hint": hint}


def describe_error(error: Exception) -> str:
    """What went wrong talking to Zhenzi, for an operator. Error texts never hold the app
    secret: the client removes it from everything it raises."""
    if isinstance(error, ZhenziAPIError):
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
        unreachable = describe_unreachable(str(error), sending=False)
        if unreachable is not None:
            return unreachable
        return _("Zhenzi could not be reached or gave no usable answer: %(detail)s") % {
            "detail": describe_stored_error(str(error))
        }
    if isinstance(error, ImproperlyConfigured):
        return _("Zhenzi is not configured: %(detail)s") % {"detail": error}
    if isinstance(error, ZhenziError):
        return describe_stored_error(str(error))
    raise TypeError(f"not an error about Zhenzi: {type(error).__name__}")


_UNREACHABLE = re.compile(
    r"Could not reach (?P<url>\S+), nothing was sent \((?P<detail>.+)\)", re.DOTALL
)


def describe_unreachable(text: str, *, sending: bool) -> str | None:
    """A connection the client could not open (its ``ZhenziNotSentError`` text), said with
    what to check; None if ``text`` says something else. The client's text says "nothing was
    sent" whatever the request: only a send (``sending``) says so here, a balance read or a
    status look-up has nothing to send."""
    match = _UNREACHABLE.fullmatch(text)
    if match is None:
        return None
    if sending:
        problem = _("Zhenzi could not be reached at %(url)s, nothing was sent (%(detail)s).")
    else:
        problem = _("Zhenzi could not be reached at %(url)s (%(detail)s).")
    hint = _(
        "Check ZHENZI['API_URL']: is the server it names running and reachable from here? For "
        "the bundled sandbox, start it with manage.py zhenzi_sandbox."
    )
    return _("%(problem)s %(hint)s") % {
        "problem": problem % {"url": match["url"], "detail": match["detail"]},
        "hint": hint,
    }


@dataclass(frozen=True)
class StoredReason:
    """One shape of stored error text: a pattern matching all of it, the text that says it
    again with the pattern's named groups as ``%(name)s``, and the groups that hold another
    stored text (translated in turn)."""

    pattern: re.Pattern[str]
    message: Promise
    nested: tuple[str, ...] = ()

    def describe(self, text: str) -> str | None:
        match = self.pattern.fullmatch(text)
        if match is None:
            return None
        values = {
            name: describe_stored_error(value) if name in self.nested else value
            for name, value in match.groupdict().items()
        }
        return str(self.message) % values


def _reason(pattern: str, message: Promise, nested: tuple[str, ...] = ()) -> StoredReason:
    return StoredReason(re.compile(pattern, re.DOTALL), message, nested)


STORED_REASONS: tuple[StoredReason, ...] = (
    # Written by the services.
    _reason(
        r"The claim expired before an answer was recorded\.",
        gettext_lazy("The claim expired before an answer was recorded."),
    ),
    _reason(r"The provider never received it\.", gettext_lazy("The provider never received it.")),
    _reason(
        r"Taken as sent: the provider refused its messageId as already used, though "
        r"findSmsByMessageId never showed it\.",
        gettext_lazy(
            "Taken as sent: the provider refused its messageId as already used, though "
            "findSmsByMessageId never showed it."
        ),
    ),
    _reason(
        r"Stored template parameters are not a list of strings: (?P<params>.+)",
        gettext_lazy("Stored template parameters are not a list of strings: %(params)s"),
    ),
    _reason(
        r"The backend cannot look messages up\.",
        gettext_lazy("The backend cannot look messages up."),
    ),
    _reason(
        re.escape(MASKED_NOT_RESENT),
        gettext_lazy(
            "Not sent again: the verification code it carried was kept only in memory; request "
            "a new code."
        ),
    ),
    _reason(
        re.escape(MASKED_NOT_RESENT) + r" \((?P<reason>.+)\)",
        gettext_lazy(
            "Not sent again: the verification code it carried was kept only in memory; request "
            "a new code. (%(reason)s)"
        ),
        nested=("reason",),
    ),
    _reason(
        r"Gave up after (?P<count>\d+) attempts: (?P<reason>.+)",
        # Translators: the stored English text says "attempts" whatever the count.
        gettext_lazy("Gave up after %(count)s attempts: %(reason)s"),
        nested=("reason",),
    ),
    _reason(
        r"Reconciliation failed, will ask again: (?P<reason>.+)",
        gettext_lazy("Reconciliation failed, will ask again: %(reason)s"),
        nested=("reason",),
    ),
    # Written by the client, stored by the services as the reason of a failure.
    _reason(
        r"Could not reach (?P<url>\S+), nothing was sent \((?P<detail>.+)\)",
        gettext_lazy("Could not reach %(url)s, nothing was sent (%(detail)s)"),
    ),
    _reason(
        r"No answer from (?P<url>\S+); the request may have been processed \((?P<detail>.+)\)",
        gettext_lazy("No answer from %(url)s; the request may have been processed (%(detail)s)"),
    ),
    _reason(
        r"HTTP (?P<status>\d+) from (?P<path>\S+): the provider may have processed the request",
        gettext_lazy("HTTP %(status)s from %(path)s: the provider may have processed the request"),
    ),
    _reason(
        r"HTTP (?P<status>\d+) from (?P<path>\S+): the request was refused before processing "
        r"\(check ZHENZI\['API_URL'\]\)",
        gettext_lazy(
            "HTTP %(status)s from %(path)s: the request was refused before processing (check "
            "ZHENZI['API_URL'])"
        ),
    ),
    _reason(
        r"The answer from (?P<path>\S+) has no integer 'code'",
        gettext_lazy("The answer from %(path)s has no integer 'code'"),
    ),
    _reason(
        r"The answer from (?P<path>\S+) is not JSON",
        gettext_lazy("The answer from %(path)s is not JSON"),
    ),
    _reason(
        r"(?P<number>.+) is not a mainland China mobile number \(11 digits starting with "
        r"1\[3-9\]\)\.",
        gettext_lazy(
            "%(number)s is not a mainland China mobile number (11 digits starting with 1[3-9])."
        ),
    ),
    _reason(
        r"(?P<number>.+) holds several numbers; Zhenzi takes exactly one number per message\.",
        gettext_lazy(
            "%(number)s holds several numbers; Zhenzi takes exactly one number per message."
        ),
    ),
    _reason(r"The phone number is empty\.", gettext_lazy("The phone number is empty.")),
)


_API_ERROR = re.compile(
    r"Zhenzi error (?P<code>-?\d+) on (?P<endpoint>\S+): (?P<rest>.+)", re.DOTALL
)


def describe_api_error(text: str) -> str | None:
    """A stored ``ZhenziAPIError`` text, said again with the code's meaning and hint in the
    page's language; None if ``text`` is not one."""
    match = _API_ERROR.fullmatch(text)
    if match is None:
        return None
    code = int(match["code"])
    explanation = explain(code)
    head = f"{explanation.meaning} ({explanation.meaning_zh}; provider said: "
    tail = f"). {explanation.hint}"
    rest = match["rest"]
    if not (rest.startswith(head) and rest.endswith(tail)) or len(rest) < len(head + tail):
        return None
    meaning, hint = explain_code(code)
    return _(
        "Zhenzi error %(code)s on %(endpoint)s: %(meaning)s (provider said: %(answer)s). %(hint)s"
    ) % {
        "code": code,
        "endpoint": match["endpoint"],
        "meaning": meaning,
        "answer": rest[len(head) : len(rest) - len(tail)],
        "hint": hint,
    }


def describe_stored_error(text: str) -> str:
    """A ``Message.error_text`` in the page's language: each known reason the services store
    (and the client errors they store as reasons) is translated; anything else is shown as it
    was stored."""
    for reason in STORED_REASONS:
        described = reason.describe(text)
        if described is not None:
            return described
    described = describe_api_error(text)
    return text if described is None else described
