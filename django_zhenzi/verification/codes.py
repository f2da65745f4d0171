"""One-time verification codes by SMS: :func:`send_code` and :func:`check_code`.

Forms for a site's own views are in :mod:`django_zhenzi.verification.forms`.

- A code is ``CODE_LENGTH`` random digits (``secrets``); only an HMAC-SHA256 of it is stored,
  keyed from SECRET_KEY (``salted_hmac``) with the number and purpose in the salt.
- Its message is stored with the code masked (``******``) and sent at once from memory, never
  queued: the real text exists only in the sending process. If that send cannot complete, the
  message fails with a reason instead of being retried (a retry would have only the mask), and
  the user asks for a new code. See ``services.send_code_message``.
- Every code request goes through the abuse limits (``services.limits``), cooldown included.
- A code is good for ``CODE_TTL`` seconds, for one purpose, for one successful check, and for at
  most ``CODE_MAX_TRIES`` checks; a newer code for the same number and purpose replaces it.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from dataclasses import replace
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.utils.crypto import constant_time_compare, salted_hmac

from django_zhenzi import services
from django_zhenzi.client import (
    ZhenziInputError,
    mask_number,
    normalize_number,
    normalized_or_none,
)
from django_zhenzi.code_rules import code_message_is_valid
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import CODE_MASK, VerificationCode
from django_zhenzi.services import limits
from django_zhenzi.services.limits import RateLimited

__all__ = ["CODE_MASK", "RateLimited", "check_code", "send_code"]

logger = logging.getLogger("django_zhenzi")

_PURPOSE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
#: A code given to send_code: allauth's are letters and digits, grouped with dashes.
_GIVEN_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
#: What a code is compared with when the number has none: a hex digest no code hashes to.
_NO_CODE_HASH = "0" * 64


def send_code(
    number: str | int,
    *,
    purpose: str = "login",
    client_ip: str | None = None,
    message: str | None = None,
    template_id: str | None = None,
    code: str | None = None,
    ttl: float | None = None,
) -> VerificationCode:
    """Send a new code to ``number`` for ``purpose`` and return its row (``.sms`` is the message).

    ``code`` and ``ttl`` (seconds) are for a code another library made and checks itself
    (django-allauth's, django-two-factor-auth's token): it is sent and stored like one of ours,
    masked, through the same limits; by default the code is CODE_LENGTH random digits, good for
    CODE_TTL.

    The content is ``message`` or ``template_id`` when given, else ZHENZI['CODE_MESSAGE'] or
    ZHENZI['CODE_TEMPLATE_ID']: a text with ``{code}`` and ``{minutes}`` placeholders, or a
    console template filled with ``[code, minutes]``. ``client_ip`` (the end user's) is counted
    by the per-IP limit and passed to Zhenzi as clientIp.

    Raises RateLimited when a limit refuses (nothing sent), ZhenziInputError for a bad number or
    content, ImproperlyConfigured when no content is configured. Inside a transaction the code
    is sent once it commits.
    """
    number = normalize_number(number)
    purpose = _checked_purpose(purpose)
    if code is None:
        length = int(zhenzi_settings.CODE_LENGTH)
        code = f"{secrets.randbelow(10**length):0{length}d}"
    elif not isinstance(code, str) or not _GIVEN_CODE.fullmatch(code):
        raise ZhenziInputError(
            "A given code is 1 to 32 ASCII letters, digits or '-'.", field="code"
        )
    ttl = float(zhenzi_settings.CODE_TTL if ttl is None else ttl)
    content, masked = _contents(code, math.ceil(ttl / 60), client_ip, message, template_id)
    limits.check_send(number, content.client_ip, code=True)
    moment = services.clock.now()
    with transaction.atomic():
        VerificationCode.objects.filter(
            number=number, purpose=purpose, state=VerificationCode.State.ACTIVE
        ).update(state=VerificationCode.State.SUPERSEDED)
        row = VerificationCode.objects.create(
            number=number,
            purpose=purpose,
            code_hash=code_hash(number, purpose, code),
            client_ip=content.client_ip,
            created_at=moment,
            expires_at=moment + timedelta(seconds=ttl),
        )
        services.send_code_message(row, content, masked)
    logger.info("Sending a %s code to %s", purpose, mask_number(number))
    return row


def check_code(number: str | int, code: str, *, purpose: str = "login") -> bool:
    """Whether ``code`` is the live code of ``number`` for ``purpose``; a right code is used up.

    Only the newest code of a number and purpose counts, until it expires, is used, or has been
    checked CODE_MAX_TRIES times. Every check counts as a try before the comparison (in one
    conditional UPDATE), so concurrent guesses cannot exceed the tries; marking it used is
    another conditional UPDATE, so two concurrent checks of the right code cannot both pass.

    Whether a number has a code must not show: a check that fails does the same work whatever
    the reason (no code, a used, expired or wrong one), two queries and one HMAC compared in
    constant time. Only a right code costs a third query, to mark it used. A number that is not
    a mobile number fails at once, without a query.
    """
    valid_number = normalized_or_none(number)
    if valid_number is None:
        return False
    number = valid_number
    purpose = _checked_purpose(purpose)
    given_hash = code_hash(number, purpose, "".join(str(code or "").split()))
    moment = services.clock.now()
    newest = (
        VerificationCode.objects.filter(number=number, purpose=purpose)
        .order_by("-created_at", "-id")
        .first()
    )
    # Without a code this UPDATE runs all the same, on no row (pk=None matches none).
    active = VerificationCode.objects.filter(
        pk=newest.pk if newest is not None else None, state=VerificationCode.State.ACTIVE
    )
    tried = active.filter(
        expires_at__gt=moment, tries__lt=int(zhenzi_settings.CODE_MAX_TRIES)
    ).update(tries=F("tries") + 1)
    stored_hash = newest.code_hash if newest is not None else _NO_CODE_HASH
    if not constant_time_compare(stored_hash, given_hash) or not tried:
        return False
    return bool(active.update(state=VerificationCode.State.USED, used_at=moment))


def code_hash(number: str, purpose: str, code: str) -> str:
    """HMAC-SHA256 of ``code``, keyed from SECRET_KEY with the number and purpose in the salt."""
    salt = f"django_zhenzi.verification:{purpose}:{number}"
    return salted_hmac(salt, code, algorithm="sha256").hexdigest()


def _checked_purpose(purpose: str) -> str:
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
        raise ZhenziInputError(
            "A purpose is 1 to 32 lowercase letters, digits, '_', '.' or '-'.", field="purpose"
        )
    return purpose


def _contents(
    code: str,
    minutes: int,
    client_ip: str | None,
    message: str | None,
    template_id: str | None,
) -> tuple[services.Content, services.Content]:
    """The content to send (with the code) and the one to store (with the mask)."""
    if message is None and template_id is None:
        message = zhenzi_settings.CODE_MESSAGE or None
        template_id = zhenzi_settings.CODE_TEMPLATE_ID or None
    if message is None and template_id is None:
        raise ImproperlyConfigured(
            "Set ZHENZI['CODE_MESSAGE'] (a text with {code} and {minutes}) or "
            "ZHENZI['CODE_TEMPLATE_ID'] (a template filled with [code, minutes]) to send "
            "verification codes."
        )
    if template_id is not None:
        content = services.validate_content(message, template_id, [code, str(minutes)], client_ip)
        return content, replace(content, template_params=(CODE_MASK, str(minutes)))
    if not code_message_is_valid(message):
        raise ZhenziInputError(
            "A code message needs {code} and no placeholder but {code} and {minutes}.",
            field="message",
        )
    content = services.validate_content(
        message.format(code=code, minutes=minutes), None, None, client_ip
    )
    return content, replace(content, text=message.format(code=CODE_MASK, minutes=minutes))
