"""What a send carries: validated once for the whole send, before anything is stored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django_zhenzi.client import (
    ZhenziInputError,
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


def as_number_list(numbers: str | int | Iterable[str | int]) -> list[str | int]:
    if isinstance(numbers, (str, int)):
        return [numbers]
    return list(numbers)
