"""django-two-factor-auth's SMS tokens sent through django-zhenzi::

    TWO_FACTOR_SMS_GATEWAY = "django_zhenzi.contrib.two_factor.ZhenziGateway"

``pip install django-zhenzi[two-factor]``. The token goes out with :func:`send_code` (given the
token): through the abuse limits, masked in every stored row, sent at once from memory. Zhenzi
makes no voice calls: leave TWO_FACTOR_CALL_GATEWAY unset (check ``django_zhenzi.E110`` says
so when it points here).
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from django_zhenzi.client import ZhenziInputError, mask_number, normalize_number
from django_zhenzi.verification import RateLimited, send_code

logger = logging.getLogger("django_zhenzi")

#: The purpose two-factor tokens are stored under (the admin's verification codes show it).
PURPOSE = "two-factor"
#: How long a token stays good: two-factor accepts the TOTP of the last five 30-second steps
#: besides the current one (``PhoneDevice.validate_token``), so at least two and a half minutes.
TOKEN_TTL = 150


class ZhenziCallsUnsupported(NotImplementedError):
    """Zhenzi sends text messages only; it cannot place a voice call."""


class ZhenziGateway:
    """A gateway for TWO_FACTOR_SMS_GATEWAY: ``send_sms`` sends the token to the device's number.

    The device holds an E.164 number (``+8613800138000``); Zhenzi takes mainland China mobile
    numbers only, so another one raises :class:`ZhenziInputError` saying so. two-factor's setup
    wizard catches it and shows that the token could not be sent, and no such device is ever
    confirmed. A refusal by the limits is logged and sends nothing, without raising: two-factor's
    sign-in view would turn an exception into a server error, and the user signs in again once
    the wait is over. The refusal is counted in the admin's rate-limit refusals.

    two-factor hands a gateway no request. With two-factor's ``ThreadLocals`` middleware
    (``two_factor.middleware.threadlocals.ThreadLocals``, which its Twilio gateway needs too)
    the request is found there, and the token counts against the per-IP limit and is sent with
    Zhenzi's clientIp; without it, only the per-number and site-wide limits apply.
    """

    def client_ip(self, request: HttpRequest | None) -> str | None:
        """The end user's address: ``REMOTE_ADDR``. Behind a proxy, override it to read the
        address your proxy sets."""
        if request is None:
            return None
        return request.META.get("REMOTE_ADDR") or None

    def send_sms(self, device: Any, token: str) -> None:
        try:
            number = normalize_number(str(device.number))
        except ZhenziInputError:
            raise ZhenziInputError(
                f"Two-factor token not sent: {mask_number(str(device.number))} is not a mainland "
                "China mobile number, the only kind Zhenzi sends to.",
                field="number",
            ) from None
        try:
            send_code(
                number,
                purpose=PURPOSE,
                code=str(token),
                ttl=TOKEN_TTL,
                client_ip=self.client_ip(current_request()),
            )
        except RateLimited as refusal:
            logger.warning(
                "Two-factor token for %s not sent: refused by %s, retry in %s s",
                mask_number(number),
                refusal.limit.value,
                refusal.retry_after,
            )

    def make_call(self, device: Any, token: str) -> None:
        raise ZhenziCallsUnsupported(
            "Zhenzi sends text messages only and cannot call: set TWO_FACTOR_CALL_GATEWAY to "
            "another gateway, or leave it unset to offer no phone calls."
        )


def current_request() -> HttpRequest | None:
    """The request two-factor's ThreadLocals middleware keeps, if it is installed; imported
    here so this module imports none of two-factor's."""
    from two_factor.middleware.threadlocals import get_current_request

    return get_current_request()
