"""Forms a site drops into its own views: ask for a code, then check it.

>>> form = CodeRequestForm(request.POST, purpose="login", client_ip=request.META["REMOTE_ADDR"])
>>> if form.is_valid() and form.send():
...     request.session["login_number"] = form.cleaned_data["number"]
>>> form = VerificationCodeForm(request.POST, number=request.session["login_number"])
>>> if form.is_valid():  # the code was right, and is now used up
...     ...
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EMPTY_VALUES
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_zhenzi.client import normalized_or_none
from django_zhenzi.models import Status, VerificationCode
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.verification import check_code, send_code


class PhoneNumberField(forms.CharField):
    """A mainland China mobile number, cleaned to its 11 digits (spaces, dashes, +86 dropped)."""

    default_error_messages = {
        "invalid": _("Enter a mainland China mobile number (11 digits starting with 1).")
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Mobile number"))
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"})
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        if value in EMPTY_VALUES:
            return ""
        number = normalized_or_none(value)
        if number is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return number


def wait_text(seconds: int) -> str:
    """How long to wait, rounded up: 30 seconds, 5 minutes, 2 hours."""
    if seconds < 120:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = -(-seconds // 60)
    if minutes < 120:
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    hours = -(-minutes // 60)
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}


class CodeRequestForm(forms.Form):
    """Asks for a number; :meth:`send` sends it a code, or adds an error saying how long to wait.

    ``client_ip`` is the end user's address, for the per-IP limit and Zhenzi's clientIp. Behind
    a reverse proxy, pass the address the proxy reports, not ``REMOTE_ADDR``.
    """

    number = PhoneNumberField()

    def __init__(
        self, *args: Any, purpose: str = "login", client_ip: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.purpose = purpose
        self.client_ip = client_ip
        #: Seconds until a refused request may be tried again (None unless refused).
        self.retry_after: int | None = None

    def send(self) -> VerificationCode | None:
        """Send a code to the cleaned number; None (with a form error) when refused or failed.

        Call after ``is_valid()``. The error never says which limit refused. Inside a
        transaction (``ATOMIC_REQUESTS``, or the caller's own) the code is sent only when it
        commits, after this returns: a send that then fails shows no error here (the code shows
        as failed in the admin, and the user asks for another).
        """
        try:
            code = send_code(
                self.cleaned_data["number"], purpose=self.purpose, client_ip=self.client_ip
            )
        except RateLimited as refusal:
            self.retry_after = refusal.retry_after
            self.add_error(
                None,
                ValidationError(
                    _("Too many code requests. Try again in %(wait)s."),
                    code="rate_limited",
                    params={"wait": wait_text(refusal.retry_after)},
                ),
            )
            return None
        if code.sms is not None and code.sms.status == Status.FAILED:
            self.add_error(
                None,
                ValidationError(
                    _("The code could not be sent. Try again later."), code="send_failed"
                ),
            )
            return None
        return code


class VerificationCodeForm(forms.Form):
    """Checks the code sent to ``number`` for ``purpose``; valid means right, and used up."""

    code = forms.CharField(
        label=_("Verification code"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )

    def __init__(self, *args: Any, number: str, purpose: str = "login", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.number = number
        self.purpose = purpose

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        if not check_code(self.number, code, purpose=self.purpose):
            raise ValidationError(
                _("The code is wrong or has expired. Check it, or ask for a new one."),
                code="invalid_code",
            )
        return code
