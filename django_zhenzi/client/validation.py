"""Input checks run before any HTTP call, so bad input fails fast with a clear error.

Each function returns the value in the form the API wants, or raises :class:`ZhenziInputError`.

Characters: no value may hold a lone surrogate (half of a UTF-16 pair: not text, no encoding
takes it) or a control character (Unicode category Cc: C0, DEL and C1), except that a message
text may hold line breaks (``\n``, ``\r\n``) and tabs. PostgreSQL refuses NUL outright, and the
others have no place in an SMS. A phone number is ASCII digits only, once its spaces, dashes,
parentheses and country prefix are dropped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from django_zhenzi.client.errors import ZhenziInputError

MAX_MESSAGE_LENGTH = 1000
MAX_MESSAGE_ID_LENGTH = 64
#: The longest template id accepted (and stored: ``Message.template_id`` has this max_length).
MAX_TEMPLATE_ID_LENGTH = 64
#: The control characters a message text may hold: line breaks and tabs.
MESSAGE_CONTROL_CHARACTERS = "\n\r\t"

# [0-9], never \d: \d also matches full-width, Arabic-Indic and every other Unicode digit.
_MAINLAND_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_COUNTRY_PREFIX = re.compile(r"^(?:\+86|0086|86)(?=1[0-9]{10}$)")
_NUMBER_SEPARATORS = re.compile(r"[\s\-()]")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_REFUSED_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The control characters that count as spaces in a phone number (tab, line breaks...).
_NUMBER_SPACE_CONTROLS = "".join(
    character
    for character in map(chr, [*range(0x20), *range(0x7F, 0xA0)])
    if _NUMBER_SEPARATORS.fullmatch(character)
)


def check_characters(value: str, *, field: str, name: str, allowed: str = "") -> str:
    """``value`` unless it holds a lone surrogate or a control character not in ``allowed``.

    ``name`` says what the value is in the error ("The message", "Template parameter 2").
    """
    for match in _REFUSED_CHARACTER.finditer(value):
        character = match.group()
        if character in allowed:
            continue
        if "\ud800" <= character <= "\udfff":
            problem = f"a lone surrogate ({character!r}), which is not valid Unicode text,"
        else:
            problem = f"the control character {character!r}"
        raise ZhenziInputError(
            f"{name} holds {problem} at position {match.start()}.",
            field=field,
            character=character,
        )
    return value


def check_number_characters(number: object) -> None:
    """Refuse a phone number holding a lone surrogate or a control character other than the
    spaces :func:`normalize_number` drops.

    Unlike a merely wrong number, such a one cannot be stored on the failed row that would
    record it, so a batch that holds one is refused as a whole.
    """
    if isinstance(number, str):
        check_characters(
            number, field="number", name="A phone number", allowed=_NUMBER_SPACE_CONTROLS
        )


def normalize_number(number: str | int) -> str:
    """One mainland mobile number as 11 digits (spaces, dashes and a +86 prefix are dropped)."""
    if isinstance(number, bool) or not isinstance(number, (str, int)):
        raise ZhenziInputError(
            f"A phone number must be a string, not {type(number).__name__}.", field="number"
        )
    check_number_characters(number)
    digits = _NUMBER_SEPARATORS.sub("", str(number))
    digits = _COUNTRY_PREFIX.sub("", digits, count=1)
    if not digits:
        raise ZhenziInputError("The phone number is empty.", field="number", kind="empty_number")
    if re.search(r"[,;，；/|]", digits):
        raise ZhenziInputError(
            f"{number!r} holds several numbers; Zhenzi takes exactly one number per message.",
            field="number",
            kind="several_numbers",
            params={"number": repr(number)},
        )
    if not _MAINLAND_MOBILE.fullmatch(digits):
        raise ZhenziInputError(
            f"{number!r} is not a mainland China mobile number (11 digits starting with 1[3-9]).",
            field="number",
            kind="not_mobile_number",
            params={"number": repr(number)},
        )
    return digits


def normalized_or_none(number: object) -> str | None:
    """``normalize_number(number)``, or None when it is not a mainland mobile number: for
    callers that skip an invalid number rather than stop at it."""
    try:
        return normalize_number(number)  # type: ignore[arg-type]
    except ZhenziInputError:
        return None


def message_length(message: str) -> int:
    """The length the provider counts: UTF-16 code units (an emoji counts two)."""
    return len(message.encode("utf-16-le")) // 2


def validate_message(message: str) -> str:
    """A non-empty text of at most 1000 characters; of the control characters, only line
    breaks and tabs."""
    if not isinstance(message, str):
        raise ZhenziInputError(
            f"The message must be a string, not {type(message).__name__}.", field="message"
        )
    check_characters(
        message, field="message", name="The message", allowed=MESSAGE_CONTROL_CHARACTERS
    )
    if not message.strip():
        raise ZhenziInputError("The message is empty.", field="message")
    length = message_length(message)
    if length > MAX_MESSAGE_LENGTH:
        raise ZhenziInputError(
            f"The message is {length} characters long; Zhenzi accepts at most "
            f"{MAX_MESSAGE_LENGTH}.",
            field="message",
        )
    return message


def validate_template_id(template_id: str | int) -> str:
    """A template id from the console, as a string of at most MAX_TEMPLATE_ID_LENGTH
    characters."""
    if isinstance(template_id, bool) or not isinstance(template_id, (str, int)):
        raise ZhenziInputError(
            f"The template id must be a string, not {type(template_id).__name__}.",
            field="template_id",
        )
    value = check_characters(str(template_id).strip(), field="template_id", name="The template id")
    if len(value) > MAX_TEMPLATE_ID_LENGTH:
        raise ZhenziInputError(
            f"The template id is {len(value)} characters long; a template id has at most "
            f"{MAX_TEMPLATE_ID_LENGTH}.",
            field="template_id",
        )
    if not value or re.search(r"\s", value):
        raise ZhenziInputError(
            f"{template_id!r} is not a template id (empty, or holds spaces).", field="template_id"
        )
    return value


def validate_template_params(params: Sequence[str]) -> list[str]:
    """The template's parameters: a list of strings, filled into its placeholders in order."""
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise ZhenziInputError(
            f"Template parameters must be a list of strings, not {type(params).__name__}.",
            field="template_params",
        )
    for position, value in enumerate(params):
        if not isinstance(value, str):
            raise ZhenziInputError(
                f"Template parameter {position} is a {type(value).__name__}, not a string; "
                f"write it as str(value).",
                field="template_params",
            )
        check_characters(value, field="template_params", name=f"Template parameter {position}")
    return list(params)


def validate_message_id(message_id: str) -> str:
    """A messageId: 1-64 characters of letters, digits and ``_.:-``."""
    if (
        not isinstance(message_id, str)
        or len(message_id) > MAX_MESSAGE_ID_LENGTH
        or not _MESSAGE_ID.fullmatch(message_id)
    ):
        raise ZhenziInputError(
            f"{message_id!r} is not a valid messageId: use 1-{MAX_MESSAGE_ID_LENGTH} letters, "
            f"digits or the characters _.:- (a UUID's hex form fits).",
            field="message_id",
        )
    return message_id


def validate_client_ip(client_ip: str) -> str:
    """The end user's IP address (IPv4 or IPv6), passed to Zhenzi as ``clientIp``."""
    # An IPv6 scope ("fe80::1%eth0") may hold any character: check them all first.
    value = check_characters(str(client_ip).strip(), field="client_ip", name="The client IP")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ZhenziInputError(f"{client_ip!r} is not an IP address.", field="client_ip") from None
