"""What a delivery-report request looks like: the one place that holds the assumed format.

Zhenzi has not published the body of its status reports (``API-NOTES.md``, "Status reports").
:func:`parse_reports` is written to be tolerant and is the only function to change once the real
format is known. It accepts:

- a single report or a batch: a JSON object, a JSON array of objects, form fields, or a form field
  (or a JSON object's field) holding a JSON array or object, like Yunpian's ``sms_status``;
- field names compared without case, ``_`` or ``-``: the messageId as ``messageId``,
  ``message_id``, ``msgId``, ``smsMsgId``, ``smsId`` or ``sid``; the number as ``toNumber``,
  ``number``, ``mobile``, ``phone`` or ``phoneNumber``; the status word as ``status``,
  ``report_status``, ``status_code``, ``stat``, ``delivery_status`` or else ``errorCode``;
  every other field (report time, error codes...) is kept in the stored payload, unread;
- the body in the charset its Content-Type names (UTF-8 by default, a BOM is ignored).

A batch in which some reports lack a usable messageId stores the others and counts the rest as
skipped; a body with no usable report at all is malformed. Stored payloads never hold secrets:
fields named like a secret, token, password or the appId are dropped, the message text is dropped
(it may hold a verification code), and any configured secret found in a value is masked.
"""

from __future__ import annotations

import codecs
import functools
import hmac
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl, unquote

from django.http import HttpRequest
from django.utils.http import parse_header_parameters
from django.utils.translation import gettext_lazy as _

from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.exceptions import CallbackRefused as RefusedBody
from django_zhenzi.exceptions import CallbackTooLarge as BodyTooLarge
from django_zhenzi.log import MASK
from django_zhenzi.models import StatusReport
from django_zhenzi.services import ReportData

MAX_REPORTS_PER_REQUEST = 1000
MAX_NESTING = 16
"""Deeper JSON is refused: real reports nest two or three levels."""
MAX_MESSAGE_ID_LENGTH = StatusReport._meta.get_field("reported_message_id").max_length

MESSAGE_ID_FIELDS = ("messageid", "msgid", "smsmsgid", "smsid", "sid")
NUMBER_FIELDS = ("tonumber", "number", "mobile", "phone", "phonenumber")
STATUS_FIELDS = ("status", "reportstatus", "statuscode", "stat", "deliverystatus", "errorcode")
TEXT_FIELDS = frozenset({"message", "content", "text", "smscontent", "messagecontent", "smstext"})
SECRET_FIELD_PARTS = ("secret", "token", "password", "passwd", "apikey", "accesskey")
SECRET_FIELDS = frozenset({"appid"})

JSON_START = ("{", "[")
URL_ENCODED_JSON_START = ("%7b", "%5b")


@dataclass
class ParsedReports:
    """The reports found in one request body, and how many items had no usable messageId."""

    reports: list[ReportData] = field(default_factory=list)
    skipped: int = 0


def token_is_valid(candidate: str) -> bool:
    """Whether ``candidate`` is one of the configured callback tokens, in constant time."""
    given = candidate.encode("utf-8", "replace")
    matches = [
        hmac.compare_digest(given, token.encode("utf-8", "replace"))
        for token in zhenzi_settings.callback_tokens
    ]
    return any(matches)


def configured_secrets() -> tuple[str, ...]:
    """The values no stored payload may contain: every callback token and the app secret."""
    app_secret = zhenzi_settings.APP_SECRET
    secrets = [*zhenzi_settings.callback_tokens, app_secret if isinstance(app_secret, str) else ""]
    return tuple(secret for secret in secrets if secret)


def read_body(request: HttpRequest, limit: int) -> bytes:
    """At most ``limit`` bytes of the request body; BodyTooLarge past it, before reading it all."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge(_("The body is larger than the callback accepts."))
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(_("The body is larger than the callback accepts."))
    return body


def parse_reports(
    body: bytes, content_type: str = "", *, secrets: Iterable[str] = ()
) -> ParsedReports:
    """The delivery reports in a callback body; RefusedBody when there is none to store.

    ``content_type`` is the whole Content-Type header. The body is JSON when it says so or the
    body starts with ``{`` or ``[``, multipart form data when it says so, URL-encoded form data
    otherwise. ``secrets`` are masked wherever they appear in what is returned.
    """
    media_type, charset = _media_type_and_charset(content_type)
    if media_type == "multipart/form-data":
        document: Any = _load_multipart(body, content_type, charset)
    else:
        text = _decode(body, charset)
        if "json" in media_type or text.lstrip().startswith(JSON_START):
            document = _load_json(text)
        else:
            document = _load_form(text, charset)
    items = _report_items(document)
    if len(items) > MAX_REPORTS_PER_REQUEST:
        raise BodyTooLarge(_("The body holds too many reports for one request."))
    masker = _Masker(secrets)
    parsed = ParsedReports()
    for item in items:
        report = _read_report(item, masker) if isinstance(item, dict) else None
        if report is None:
            parsed.skipped += 1
        else:
            parsed.reports.append(report)
    if not parsed.reports:
        raise RefusedBody(_("The body holds no delivery report with a messageId."))
    return parsed


# --- Decoding ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _media_type_and_charset(content_type: str) -> tuple[str, str]:
    """The media type and the charset to decode with, of a Content-Type header; remembered, as
    a provider sends the same header with every request (parsing it costs more than the rest)."""
    media_type, parameters = parse_header_parameters(content_type)
    return media_type, _charset(parameters.get("charset", ""))


def _charset(declared: str) -> str:
    """The declared charset if Python knows it (else UTF-8, as Django does), BOM-tolerant."""
    try:
        name = codecs.lookup(declared).name if declared else "utf-8"
    except LookupError:
        name = "utf-8"
    return "utf-8-sig" if name == "utf-8" else name


def _decode(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset)
    except (ValueError, LookupError):  # UnicodeDecodeError, or a codec that is not for text
        raise RefusedBody(_("The body is not text in its declared charset.")) from None


def _load_multipart(body: bytes, content_type: str, charset: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body (file parts are ignored)."""
    header = content_type.encode("latin-1", "replace")
    try:
        message = BytesParser().parsebytes(b"Content-Type: " + header + b"\r\n\r\n" + body)
        parts = message.get_payload() if message.is_multipart() else None
        if not isinstance(parts, list):
            raise RefusedBody(_("The body is not valid form data."))
        fields: dict[str, str] = {}
        for part in parts:
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str) and not part.get_filename():
                payload = part.get_payload(decode=True) or b""
                fields.setdefault(name, _decode(payload, _charset(part.get_content_charset(""))))
        return fields
    except RefusedBody:
        raise
    except Exception:  # the email package raises assorted errors on malformed input
        raise RefusedBody(_("The body is not valid form data.")) from None


def _load_json(text: str) -> Any:
    try:
        document = json.loads(text, parse_float=_finite_float, parse_constant=str)
    except (ValueError, RecursionError):
        raise RefusedBody(_("The body is not valid JSON.")) from None
    if _nesting(document) > MAX_NESTING:
        raise RefusedBody(_("The body nests too deeply."))
    return document


def _finite_float(text: str) -> float | str:
    """JSON numbers too large for a float are kept as written (no infinity reaches the database)."""
    number = float(text)
    return number if math.isfinite(number) else text


def _nesting(document: Any) -> int:
    deepest = 0
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_NESTING:
                children = value.values() if isinstance(value, dict) else value
                pending.extend((child, depth + 1) for child in children)
    return deepest


def _load_form(text: str, charset: str) -> dict[str, str]:
    """URL-encoded fields; their %-escapes are bytes in the body's charset."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict")
    except ValueError:
        raise RefusedBody(_("The body is not valid form data.")) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)  # a repeated field: its first value counts
    return fields


def _embedded_json(value: Any) -> Any:
    """A field's value, or the JSON array or object it holds (also when URL-encoded once more)."""
    if not isinstance(value, str):
        return value
    candidate = value.strip()
    if candidate[:3].lower().startswith(URL_ENCODED_JSON_START):
        candidate = unquote(candidate)
    if not candidate.startswith(JSON_START):
        return value
    try:
        return _load_json(candidate)
    except RefusedBody:
        return value


# --- Reading reports -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)  # a provider sends the same few names in every report
def _field_name(name: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _field(item: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of ``names`` present in ``item`` (names compared loosely)."""
    by_name: dict[str, Any] = {}
    for key, value in item.items():
        by_name.setdefault(_field_name(key), value)
    for name in names:
        if name in by_name:
            return by_name[name]
    return None


def _report_items(document: Any) -> list[Any]:
    """The report objects of a body: a list's items, the object itself, or one wrapped level."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        return [document]
    if _field(document, MESSAGE_ID_FIELDS) is not None:
        return [document]
    for value in document.values():
        inner = _embedded_json(value)
        if isinstance(inner, list) and inner:
            return inner
        if isinstance(inner, dict) and _field(inner, MESSAGE_ID_FIELDS) is not None:
            return [inner]
    return [document]


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return str(value).strip()


def _read_report(item: dict[str, Any], masker: _Masker) -> ReportData | None:
    message_id = masker.text(_scalar_text(_field(item, MESSAGE_ID_FIELDS)))
    if not message_id or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        return None
    return ReportData(
        message_id=message_id,
        raw_status=masker.text(_scalar_text(_field(item, STATUS_FIELDS))),
        number=masker.text(_scalar_text(_field(item, NUMBER_FIELDS))),
        payload=masker.payload(item),
    )


class _Masker:
    """Makes text safe to store: no NUL, no lone surrogate, no secret, no secret-named field."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def text(self, value: str) -> str:
        value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def payload(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                self.text(str(key)): self.payload(inner)
                for key, inner in value.items()
                if not _is_withheld(key)
            }
        if isinstance(value, list):
            return [self.payload(inner) for inner in value]
        if isinstance(value, str):
            return self.text(value)
        return value


@functools.lru_cache(maxsize=1024)
def _is_withheld(key: Any) -> bool:
    """Fields never stored: secrets and the message text (it may hold a verification code)."""
    name = _field_name(key)
    return (
        name in SECRET_FIELDS
        or name in TEXT_FIELDS
        or any(part in name for part in SECRET_FIELD_PARTS)
    )
