"""``ZhenziAccountAdapter``: allauth's phone hooks, with django-zhenzi sending the codes.

allauth makes the code and checks it; this adapter sends it with :func:`send_code` (given the
code), so it goes through the abuse limits (cooldown, per number, per client IP, site-wide), is
masked in every stored row, signal and admin page, and is sent at once from memory. The numbers
are kept in :class:`~django_zhenzi.contrib.allauth.models.UserPhone`, unless a site overrides
``set_phone``, ``get_phone``, ``set_phone_verified`` and ``get_user_by_phone``.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.core.ratelimit import RateLimited as AllauthRateLimited
from allauth.core.ratelimit import respond_429
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext
from django.views.generic.edit import FormMixin

from django_zhenzi.client import normalize_number, normalized_or_none
from django_zhenzi.contrib.allauth.forms import MainlandPhoneField, refusal_error
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

        A refusal by the limits sends nothing and answers the request saying how long to wait
        (see :meth:`answer_refusal`).
        """
        # allauth passes "reauthentication" for its login (and reauthentication) codes only; a
        # phone verification code has its own timeout.
        if "reauthentication" in kwargs:
            purpose, timeout = LOGIN_PURPOSE, app_settings.LOGIN_BY_CODE_TIMEOUT
        else:
            purpose, timeout = VERIFICATION_PURPOSE, app_settings.PHONE_VERIFICATION_TIMEOUT
        request = context.request or self.request
        try:
            row = send_code(
                phone, purpose=purpose, code=code, ttl=timeout, client_ip=self.client_ip(request)
            )
        except RateLimited as refusal:
            self.answer_refusal(request, phone, refusal)
        # Inside a transaction (ATOMIC_REQUESTS, allauth's atomic sign-up) the code is sent when
        # it commits, after this answer is made: a failed send is then not said here (the code
        # shows as failed in the admin, and the user asks for another).
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
        saved), so the refusal cannot simply become a form error. Where the number came through
        a ``MainlandPhoneField`` of the view's form (sign-up, sign-in by code, changing the
        number), the view shows that form again with the wait as the field's error. A view with
        no phone field (reauthentication by code, the "send again" buttons) says the wait as a
        message and sends the browser back to the same page; allauth's headless API answers with
        allauth's own 429. The view is never run again, so allauth's own rate limits count the
        request once. Each answer goes back through allauth's ImmediateHttpResponse; outside a
        request, allauth's RateLimited is raised.
        """
        if request is None:
            raise AllauthRateLimited from refusal
        answer = form_answer(phone, refusal)
        if answer is None and hasattr(getattr(request, "allauth", None), "headless"):
            answer = respond_429(request)
        if answer is None:
            self.add_message(request, messages.ERROR, message=refusal_error(refusal).messages[0])
            answer = HttpResponseRedirect(request.get_full_path())
        raise ImmediateHttpResponse(answer)

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


def form_answer(phone: str, refusal: RateLimited) -> HttpResponse | None:
    """The view's answer with its form refusing ``phone`` (the wait as the field's error), when
    the code was asked for through a form with a ``MainlandPhoneField`` holding that number;
    None otherwise.

    allauth hands the adapter neither its view nor the form, so they are found up the call
    stack: the nearest frame of a form view's method holding the valid ``form``.
    """
    frame = sys._getframe(1)
    try:
        while frame is not None:
            view, form = frame.f_locals.get("self"), frame.f_locals.get("form")
            if isinstance(view, FormMixin) and isinstance(form, BaseForm):
                for name, field in form.fields.items():
                    cleaned = getattr(form, "cleaned_data", {}).get(name)
                    if isinstance(field, MainlandPhoneField) and cleaned == phone:
                        form.add_error(name, refusal_error(refusal))
                        return view.form_invalid(form)
                return None
            frame = frame.f_back
        return None
    finally:
        del frame
