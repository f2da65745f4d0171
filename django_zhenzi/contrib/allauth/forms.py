"""The phone field ``ZhenziAccountAdapter`` gives allauth's forms."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from django_zhenzi.verification import RateLimited
from django_zhenzi.verification.forms import PhoneNumberField, wait_text


def refusal_error(refusal: RateLimited) -> ValidationError:
    return ValidationError(
        _("Too many code requests. Try again in %(wait)s."),
        code="rate_limited",
        params={"wait": wait_text(refusal.retry_after)},
    )


class MainlandPhoneField(PhoneNumberField):
    """A mainland China mobile number, cleaned to its 11 digits, then through the adapter's
    ``clean_phone`` hook as allauth's own phone field does. Any other number is a form error.
    A number the limits refuse becomes its error too (``ZhenziAccountAdapter.answer_refusal``).
    """

    def clean(self, value: Any) -> str:
        number = super().clean(value)
        if not number:
            return number
        return get_adapter().clean_phone(number)
