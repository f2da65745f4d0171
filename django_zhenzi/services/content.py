"""What a send carries: validated once for the whole send, before anything is stored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django_zhenzi.client import (
    ZhenziInputError,
    normalize_number,
    validate_client_ip,
    validate_message,
    validate_template_id,
    validate_template_params,
)


@dataclass(frozen=True)
class Content:
    """Validated content shared by every message of one send: text, or template and params."""

    text: str = ""
    template_id: str = ""
    template_params: tuple[str, ...] = ()
    client_ip: str | None = None


def validate_content(
    message: str | None,
    template_id: str | int | None,
    template_params: Sequence[str] | None,
    client_ip: str | None,
) -> Content:
    """Check the content once for a whole send; raises ZhenziInputError."""
    ip = validate_client_ip(client_ip) if client_ip not in (None, "") else None
    if template_id not in (None, ""):
        if message not in (None, ""):
            raise ZhenziInputError(
                "Give either a message text or a template, not both.", field="message"
            )
        return Content(
            template_id=validate_template_id(template_id),
            template_params=tuple(validate_template_params(template_params or [])),
            client_ip=ip,
        )
    if template_params:
        raise ZhenziInputError("Template parameters need a template id.", field="template_id")
    return Content(text=validate_message(message), client_ip=ip)  # type: ignore[arg-type]


@dataclass
class Recipients:
    """Numbers as given, sorted out: the valid ones normalized, in order and once each; the
    invalid ones by position (with why), and the repeats by position (with the first's)."""

    numbers: list[str] = field(default_factory=list)
    invalid: dict[int, ZhenziInputError] = field(default_factory=dict)
    repeats: dict[int, int] = field(default_factory=dict)


def sort_recipients(given: Iterable[str | int]) -> Recipients:
    """Normalize every number, keep each valid one once, and note the others: for a send to a
    list (the admin's send form, ``zhenzi_send``) that goes on without the invalid numbers."""
    recipients = Recipients()
    first_at: dict[str, int] = {}
    for position, raw in enumerate(given):
        try:
            number = normalize_number(raw)
        except ZhenziInputError as error:
            recipients.invalid[position] = error
            continue
        if number in first_at:
            recipients.repeats[position] = first_at[number]
            continue
        first_at[number] = position
        recipients.numbers.append(number)
    return recipients


def as_number_list(numbers: str | int | Iterable[str | int]) -> list[str | int]:
    if isinstance(numbers, (str, int)):
        return [numbers]
    return list(numbers)
