"""A sign-in by SMS code, the way a site uses django-zhenzi: the library's code pages, with this
site's templates and a little more on the code page.

The code page follows the visitor's own code: when its delivery report says it never arrived,
and when its last try is spent, it says so and points to a new code. In sandbox mode there is no
phone, so it also shows what the phone would have received, read from the sandbox's control API.
With real credentials nothing of the sort exists.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import Status, VerificationCode
from django_zhenzi.verification.views import CheckCodeView, RequestCodeView

SESSION_NUMBER = "code_number"
SESSION_CODE_ID = "code_id"
SESSION_VERIFIED = "verified_number"
#: Seconds to wait for the sandbox's control API (it runs on this machine).
SANDBOX_TIMEOUT = 3.0
#: Statuses of a code's message after which it will never arrive.
NOT_DELIVERED = frozenset({Status.UNDELIVERED, Status.FAILED})


class DemoFlow:
    session_key = SESSION_NUMBER
    verified_session_key = SESSION_VERIFIED
    request_url = reverse_lazy("demo:request_code")


class RequestCode(DemoFlow, RequestCodeView):
    template_name = "demo/request_code.html"
    success_url = reverse_lazy("demo:check_code")

    def code_sent(self, code: VerificationCode) -> None:
        super().code_sent(code)
        self.request.session[SESSION_CODE_ID] = code.pk  # the code page follows this code

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(use_sandbox=settings.USE_SANDBOX, **kwargs)


class CheckCode(DemoFlow, CheckCodeView):
    template_name = "demo/check_code.html"
    success_url = reverse_lazy("demo:welcome")

    def code_verified(self, number: str) -> None:
        super().code_verified(number)
        self.request.session.pop(SESSION_CODE_ID, None)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # Read after the check, which counted its try: this visitor's own code, how it fared.
        code = (
            VerificationCode.objects.select_related("sms")
            .filter(pk=self.request.session.get(SESSION_CODE_ID))
            .first()
        )
        sms = code.sms if code is not None else None
        context = super().get_context_data(
            use_sandbox=settings.USE_SANDBOX,
            undelivered=sms is not None and sms.status in NOT_DELIVERED,
            out_of_tries=code is not None
            and code.state == VerificationCode.State.ACTIVE
            and code.tries >= int(zhenzi_settings.CODE_MAX_TRIES),
            **kwargs,
        )
        arrived = sms is not None and sms.message_id and not context["undelivered"]
        if settings.USE_SANDBOX and arrived:
            context["sandbox_phone"] = sandbox_phone(sms.message_id)
        return context


def welcome(request: HttpRequest) -> HttpResponse:
    number = request.session.get(SESSION_VERIFIED)
    if not number:
        return redirect("demo:request_code")
    return render(request, "demo/welcome.html", {"number": number})


@login_required
def signed_in(request: HttpRequest) -> HttpResponse:
    """Where django-allauth's sign-in lands (DEMO_SIGN_IN=allauth)."""
    from allauth.account.adapter import get_adapter

    phone = get_adapter(request).get_phone(request.user)
    return render(request, "demo/signed_in.html", {"number": phone[0] if phone else ""})


def sandbox_phone(message_id: str) -> dict[str, str]:
    """What the sandbox's phone received for ``message_id``: ``{"text": ...}`` when the sandbox
    accepted the message, ``{}`` when it did not (yet), ``{"error": ...}`` when unreachable."""
    url = f"{zhenzi_settings.API_URL.rstrip('/')}/_sandbox/messages/{quote(message_id, safe='')}"
    try:
        with requests.get(url, timeout=SANDBOX_TIMEOUT) as response:
            if response.status_code == 404:
                return {}
            response.raise_for_status()
            return {"text": str(response.json()["message"])}
    except (requests.RequestException, ValueError, KeyError) as error:
        return {"error": f"{zhenzi_settings.API_URL}: {type(error).__name__}"}
