"""``ZhenziAccountAdapter``: allauth's phone hooks, with django-zhenzi sending the codes.

allauth makes the code and checks it; this adapter sends it with :func:`send_code` (given the
code), so it goes through the abuse limits (cooldown, per number, per client IP, site-wide), is
masked in every stored row, signal and admin page, and is sent at once from memory. The numbers
are kept in :class:`~django_zhenzi.contrib.allauth.models.UserPhone`, unless a site overrides
``set_phone``, ``get_phone``, ``set_phone_verified`` and ``get_user_by_phone``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.core.ratelimit import RateLimited as AllauthRateLimited
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.utils.translation import gettext

from django_zhenzi.client import normalize_number, normalized_or_none
from django_zhenzi.contrib.allauth.forms import REFUSAL_ATTRIBUTE, MainlandPhoneField
from django_zhenzi.contrib.allauth.models import UserPhone
from django_zhenzi.models import Status
from django_zhenzi.verification import RateLimited, send_code

#: The purposes allauth's codes are stored under (the admin's verification codes show them).
LOGIN_PURPOSE = "allauth.login"
VERIFICATION_PURPOSE = "allauth.phone"


class ZhenziAccountAdapter(DefaultAccountAdapter):
    """allauth's account adapter with phone numbers sent to and stored by django-zhenzi."""

    def phone_form_field(self, **kwargs: Any) -> MainlandPhoneField:
        """A mainland China mobile number, cleaned to its 11 digits (Zhenzi sends to no other)."""
        return MainlandPhoneField(**kwargs)

    def send_verification_code_sms(
        self, user: AbstractBaseUser, phone: str, code: str, **kwargs: Any
    ) -> None:
        """Send allauth's ``code`` to ``phone`` through django-zhenzi.

        A refusal by the limits sends nothing and answers the request again with the number
        refused in its form, saying how long to wait (see :meth:`answer_refusal`).
        """
        # allauth passes "reauthentication" for its login (and reauthentication) codes only; a
        # phone verification code has its own timeout.
        if "reauthentication" in kwargs:
            purpose, timeout = LOGIN_PURPOSE, app_settings.LOGIN_BY_CODE_TIMEOUT
        else:
            purpose, timeout = VERIFICATION_PURPOSE, app_settings.PHONE_VERIFICATION_TIMEOUT
        request = context.request or self.request
        refused = getattr(request, REFUSAL_ATTRIBUTE, None)
        if refused is not None and refused[0] == phone:
            # Answering a refused request again reached another send: it is refused all the same.
            raise AllauthRateLimited
        try:
            row = send_code(
                phone, purpose=purpose, code=code, ttl=timeout, client_ip=self.client_ip(request)
            )
        except RateLimited as refusal:
            self.answer_refusal(request, phone, refusal)
        if row.sms is not None and row.sms.status == Status.FAILED and request is not None:
            self.add_message(
                request,
                messages.ERROR,
                message=gettext("The code could not be sent. Try again later."),
            )

    def answer_refusal(
        self, request: HttpRequest | None, phone: str, refusal: RateLimited
    ) -> NoReturn:
        """Answer a request whose code the limits refused: always raises.

        allauth sends a code only once its form is valid (and at sign-up, once the user is
        saved), so the refusal cannot simply become a form error. The request is answered again
        by its own view, with the refusal on the request: the phone field
        (``MainlandPhoneField``) then refuses the number with the wait, and allauth's view
        shows its form with that error. That answer goes back through allauth's
        ImmediateHttpResponse. A view with no phone field (the "send again" buttons) reaches the
        send a second time, which raises allauth's own RateLimited: those views catch it and
        say so.
        """
        match = getattr(request, "resolver_match", None)
        if request is None or match is None:
            raise AllauthRateLimited from refusal
        setattr(request, REFUSAL_ATTRIBUTE, (phone, refusal))
        raise ImmediateHttpResponse(match.func(request, *match.args, **match.kwargs))

    def client_ip(self, request: HttpRequest | None) -> str | None:
        """The end user's address as allauth sees it (ALLAUTH_TRUSTED_PROXY_COUNT...), for the
        per-IP limit and Zhenzi's clientIp; None outside a request."""
        if request is None:
            return None
        return self.get_client_ip(request)

    # --- The numbers -------------------------------------------------------------------------

    def set_phone(self, user: AbstractBaseUser, phone: str, verified: bool) -> None:
        number = normalize_number(phone)
        UserPhone.objects.update_or_create(
            user=user,
            defaults={"number": number, "verified_number": number if verified else None},
        )

    def get_phone(self, user: AbstractBaseUser) -> tuple[str, bool] | None:
        phone = UserPhone.objects.filter(user=user).first()
        return None if phone is None else (phone.number, phone.verified)

    def set_phone_verified(self, user: AbstractBaseUser, phone: str) -> None:
        # allauth refuses a number another user has verified before it gets here; the unique
        # column settles a race between two verifications.
        self.set_phone(user, phone, True)

    def get_user_by_phone(self, phone: str) -> AbstractBaseUser | None:
        number = normalized_or_none(phone)
        if number is None:
            return None
        found = UserPhone.objects.select_related("user").filter(verified_number=number).first()
        return None if found is None else found.user
