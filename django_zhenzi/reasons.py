"""Why a message failed or waits, as data: error kinds, their parameters, and their text.

A stored failure is a kind and its parameters (``Message.error_kind``, ``error_params``), beside
the provider's own code (``error_code``). Readers (the admin, the commands, the signals) render it
from this catalogue in their language; nothing parses stored prose back. ``error_text`` keeps the
English, written once at the time of failure, for logs, grep and the shell.

A reason may hold another (``gave_up``, ``lookup_failed``, ``masked_after_error``): the inner one
is stored as ``{"kind": ..., "params": ...}`` in the outer one's parameters and rendered in turn.
The client's errors carry the kinds named here as plain strings (``ZhenziError.kind``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.translation import get_language, gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from django_zhenzi.client import ZhenziError, explain


class ErrorKind(models.TextChoices):
    NONE = "", _("none")
    #: No shape of its own: the English text (in ``params["text"]``) is shown as it is.
    OTHER = "other", _("other")
    # Written by the services.
    CLAIM_EXPIRED = "claim_expired", _("claim expired")
    NEVER_RECEIVED = "never_received", _("never received")
    DUPLICATE_TAKEN_AS_SENT = "duplicate_taken_as_sent", _("taken as sent")
    NO_LOOKUP = "no_lookup", _("no look-up")
    MASKED_NOT_RESENT = "masked_not_resent", _("code not resent")
    MASKED_AFTER_ERROR = "masked_after_error", _("code not resent after an error")
    GAVE_UP = "gave_up", _("gave up")
    LOOKUP_FAILED = "lookup_failed", _("look-up failed")
    BAD_TEMPLATE_PARAMS = "bad_template_params", _("bad template parameters")
    # Carried by the client's errors.
    NOT_SENT = "not_sent", _("unreachable, not sent")
    UNREACHABLE = "unreachable", _("unreachable")
    NO_ANSWER = "no_answer", _("no answer")
    HTTP_MAYBE_PROCESSED = "http_maybe_processed", _("server error")
    HTTP_REFUSED = "http_refused", _("refused by HTTP")
    NO_CODE = "no_code", _("answer without code")
    NOT_JSON = "not_json", _("answer not JSON")
    UNEXPECTED_BALANCE = "unexpected_balance", _("unexpected balance")
    UNEXPECTED_RECORD = "unexpected_record", _("unexpected record")
    PROVIDER_ERROR = "provider_error", _("refused by the provider")
    DUPLICATE_MESSAGE_ID = "duplicate_message_id", _("messageId already used")
    NOT_MOBILE_NUMBER = "not_mobile_number", _("not a mobile number")
    SEVERAL_NUMBERS = "several_numbers", _("several numbers")
    EMPTY_NUMBER = "empty_number", _("empty number")


#: Each kind's text: English, with ``%(name)s`` for its parameters; translated when rendered.
#: ``provider_error`` also gets ``meaning`` and ``hint``: the code's, in the reader's language.
TEMPLATES: dict[str, str] = {
    ErrorKind.CLAIM_EXPIRED: gettext_noop("The claim expired before an answer was recorded."),
    ErrorKind.NEVER_RECEIVED: gettext_noop("The provider never received it."),
    ErrorKind.DUPLICATE_TAKEN_AS_SENT: gettext_noop(
        "Taken as sent: the provider refused its messageId as already used, though "
        "findSmsByMessageId never showed it."
    ),
    ErrorKind.NO_LOOKUP: gettext_noop("The backend cannot look messages up."),
    ErrorKind.MASKED_NOT_RESENT: gettext_noop(
        "Not sent again: the verification code it carried was kept only in memory; request a "
        "new code."
    ),
    ErrorKind.MASKED_AFTER_ERROR: gettext_noop(
        "Not sent again: the verification code it carried was kept only in memory; request a "
        "new code. (%(reason)s)"
    ),
    # Translators: the English text says "attempts" whatever the count.
    ErrorKind.GAVE_UP: gettext_noop("Gave up after %(count)s attempts: %(reason)s"),
    ErrorKind.LOOKUP_FAILED: gettext_noop("Reconciliation failed, will ask again: %(reason)s"),
    ErrorKind.BAD_TEMPLATE_PARAMS: gettext_noop(
        "Stored template parameters are not a list of strings: %(params)s"
    ),
    ErrorKind.NOT_SENT: gettext_noop("Could not reach %(url)s, nothing was sent (%(detail)s)"),
    ErrorKind.UNREACHABLE: gettext_noop("Could not reach %(url)s (%(detail)s)"),
    ErrorKind.NO_ANSWER: gettext_noop(
        "No answer from %(url)s; the request may have been processed (%(detail)s)"
    ),
    ErrorKind.HTTP_MAYBE_PROCESSED: gettext_noop(
        "HTTP %(status)s from %(path)s: the provider may have processed the request"
    ),
    ErrorKind.HTTP_REFUSED: gettext_noop(
        "HTTP %(status)s from %(path)s: the request was refused before processing (check "
        "ZHENZI['API_URL'])"
    ),
    ErrorKind.NO_CODE: gettext_noop("The answer from %(path)s has no integer 'code'"),
    ErrorKind.NOT_JSON: gettext_noop("The answer from %(path)s is not JSON"),
    ErrorKind.UNEXPECTED_BALANCE: gettext_noop("Unexpected balance in the answer: %(answer)s"),
    ErrorKind.UNEXPECTED_RECORD: gettext_noop("Unexpected record in the answer: %(type)s"),
    ErrorKind.PROVIDER_ERROR: gettext_noop(
        "Zhenzi error %(code)s on %(endpoint)s: %(meaning)s (provider said: %(answer)s). %(hint)s"
    ),
    ErrorKind.DUPLICATE_MESSAGE_ID: gettext_noop(
        "Zhenzi refused the messageId as already used (error %(code)s on %(endpoint)s, provider "
        "said: %(answer)s): an earlier attempt arrived, so the message is not sent again."
    ),
    ErrorKind.NOT_MOBILE_NUMBER: gettext_noop(
        "%(number)s is not a mainland China mobile number (11 digits starting with 1[3-9])."
    ),
    ErrorKind.SEVERAL_NUMBERS: gettext_noop(
        "%(number)s holds several numbers; Zhenzi takes exactly one number per message."
    ),
    ErrorKind.EMPTY_NUMBER: gettext_noop("The phone number is empty."),
}


#: The kinds an error may be stored under (an empty kind is no error).
KNOWN_KINDS = frozenset(ErrorKind.values) - {ErrorKind.NONE}


def json_safe(params: Any) -> bool:
    """Whether ``params`` is a dict that a JSON column takes as it is (no NaN: PostgreSQL's
    jsonb refuses it)."""
    if not isinstance(params, dict):
        return False
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def chinese_active() -> bool:
    """Whether text is being rendered in Chinese (zh-hans, or any other zh variant)."""
    return (get_language() or "").lower().startswith("zh")


def explain_code(code: int) -> tuple[str, str]:
    """A provider error code's meaning and hint, in Chinese when the active language is."""
    explanation = explain(code)
    if chinese_active():
        return explanation.meaning_zh, explanation.hint_zh
    return explanation.meaning, explanation.hint


def render_reason(kind: str, params: Mapping[str, Any], default: str = "") -> str:
    """The reason ``kind`` with ``params`` in the active language; ``default`` (the stored
    English, say) for a kind this catalogue does not know or parameters that do not fit it."""
    if kind == ErrorKind.OTHER:
        return str(params.get("text", default))
    template = TEMPLATES.get(kind)
    if template is None:
        return default
    values = {
        name: render_reason(value["kind"], value.get("params", {}))
        if isinstance(value, Mapping) and "kind" in value
        else value
        for name, value in params.items()
    }
    try:
        if kind == ErrorKind.PROVIDER_ERROR:
            values["meaning"], values["hint"] = explain_code(int(params["code"]))
        return gettext(template) % values
    except (KeyError, TypeError, ValueError):
        return default


@dataclass(frozen=True)
class Reason:
    """A reason to store: its kind, its JSON parameters, and its English text (``error_text``).

    Build one with :meth:`of` (the English from the catalogue) or :meth:`from_error` (the
    client's own English); store it with ``**reason.fields()``.
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @classmethod
    def of(cls, kind: str, **params: Any) -> Reason:
        """The reason ``kind``; a parameter may be another Reason, stored inside this one."""
        stored = {
            name: {"kind": value.kind, "params": value.params}
            if isinstance(value, Reason)
            else value
            for name, value in params.items()
        }
        english = {
            name: value.text if isinstance(value, Reason) else value
            for name, value in params.items()
        }
        return cls(kind, stored, TEMPLATES[kind] % english)

    @classmethod
    def from_error(cls, error: ZhenziError) -> Reason:
        """The error's kind and parameters, with its English. A kind this catalogue does not
        know (a third-party backend's, perhaps too long for ``error_kind``) or parameters that
        are not JSON are stored as ``other`` with the error's text, keeping parameters that
        are JSON: storing them as they are would fail, and leave the message where it was."""
        text = str(error)
        params = error.params if json_safe(error.params) else None
        if error.kind in KNOWN_KINDS and params is not None:
            return cls(error.kind, params, text)
        return cls(ErrorKind.OTHER, {**(params or {}), "text": text}, text)

    @classmethod
    def unexpected(cls, error: Exception) -> Reason:
        """An exception no one expected (a bug, a broken backend): its type and text."""
        text = f"{type(error).__name__}: {error}"
        return cls(ErrorKind.OTHER, {"text": text}, text)

    def fields(self) -> dict[str, Any]:
        """The ``Message`` fields that store this reason."""
        return {"error_kind": self.kind, "error_params": self.params, "error_text": self.text}

    def render(self) -> str:
        """This reason in the active language."""
        return render_reason(self.kind, self.params, self.text)


def no_reason() -> dict[str, Any]:
    """The ``Message`` fields of no error at all (the provider's code included)."""
    return {"error_code": None, "error_kind": "", "error_params": {}, "error_text": ""}
