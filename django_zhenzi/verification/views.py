"""Ready-made pages for a code flow: ask for a code, then type it.

``path("phone/", include("django_zhenzi.verification.urls"))`` gives ``phone/`` (request) and
``phone/check/``, or wire the views yourself and set what differs, as attributes of a subclass or
as ``as_view()`` arguments::

    RequestCodeView.as_view(purpose="signup", success_url="/signup/code/")
    CheckCodeView.as_view(purpose="signup", request_url="/signup/", success_url="/signup/done/")

The number travels from the first page to the second in the session (``session_key``); once the
code is right it is stored under ``verified_session_key`` for the success page to read. Both
views of one flow must agree on ``purpose`` and ``session_key``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.views.generic import FormView

from django_zhenzi.models import VerificationCode
from django_zhenzi.verification.forms import CodeRequestForm, VerificationCodeForm

#: The URL names of :mod:`django_zhenzi.verification.urls`, found in the namespace of the
#: current view when ``success_url`` or ``request_url`` is not set.
REQUEST_URL_NAME = "request"
CHECK_URL_NAME = "check"


class CodeFlowMixin:
    """What the two pages of one flow share."""

    request: HttpRequest
    #: Codes are kept apart by purpose: a code sent for "login" cannot pass a "signup" check.
    purpose = "login"
    #: The session key that carries the number from the request page to the check page.
    session_key = "django_zhenzi_code_number"
    #: The session key that holds the number once its code was right.
    verified_session_key = "django_zhenzi_verified_number"
    http_method_names = ["get", "head", "post", "options"]  # not put: it would post

    def url_beside(self, name: str) -> str:
        """The URL ``name`` in this view's namespace (as ``include()``-d from our urls.py)."""
        namespace = self.request.resolver_match.namespace if self.request.resolver_match else ""
        return reverse(f"{namespace}:{name}" if namespace else name)


class RequestCodeView(CodeFlowMixin, FormView):
    """Asks for a number and sends it a code; refused by an abuse limit, answers 429 with
    ``Retry-After`` and the form saying how long to wait."""

    form_class = CodeRequestForm
    template_name = "django_zhenzi/verification/request_code.html"
    #: Where to go once the code is sent; default: the check page beside this one.
    success_url: str | None = None

    def get_client_ip(self) -> str | None:
        """The end user's address, for the per-IP limit and Zhenzi's clientIp. Behind a reverse
        proxy, override this to read the address the proxy reports (from a header you trust)."""
        return self.request.META.get("REMOTE_ADDR")

    def get_initial(self) -> dict[str, Any]:
        # "Send another code" comes back here: the number asked for last time is filled in.
        return {"number": self.request.session.get(self.session_key, ""), **super().get_initial()}

    def get_form_kwargs(self) -> dict[str, Any]:
        return {
            **super().get_form_kwargs(),
            "purpose": self.purpose,
            "client_ip": self.get_client_ip(),
        }

    def form_valid(self, form: CodeRequestForm) -> HttpResponse:
        code = form.send()
        if code is None:
            return self.form_invalid(form)
        self.code_sent(code)
        return super().form_valid(form)

    def form_invalid(self, form: CodeRequestForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.retry_after is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response

    def code_sent(self, code: VerificationCode) -> None:
        """Remember the number for the check page; extend to remember more."""
        self.request.session[self.session_key] = code.number

    def get_success_url(self) -> str:
        if self.success_url:
            return str(self.success_url)
        return self.url_beside(CHECK_URL_NAME)


class CheckCodeView(CodeFlowMixin, FormView):
    """Checks the code sent to the number in the session; without one, goes to ``request_url``.

    A right code is used up, the number moves to ``verified_session_key`` and the visitor goes to
    ``success_url`` (default: ``settings.LOGIN_REDIRECT_URL``, as after Django's login).
    """

    form_class = VerificationCodeForm
    template_name = "django_zhenzi/verification/check_code.html"
    success_url: str | None = None
    #: Where to ask for a code; default: the request page beside this one.
    request_url: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.number = request.session.get(self.session_key)
        if not self.number:
            return redirect(self.get_request_url())
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "number": self.number, "purpose": self.purpose}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            number=self.number, request_url=self.get_request_url(), **kwargs
        )

    def form_valid(self, form: VerificationCodeForm) -> HttpResponseRedirect:
        self.code_verified(self.number)
        return HttpResponseRedirect(self.get_success_url())

    def code_verified(self, number: str) -> None:
        """Move the number from ``session_key`` to ``verified_session_key``; extend to do more
        (log the user in, mark the number confirmed)."""
        self.request.session.pop(self.session_key, None)
        self.request.session[self.verified_session_key] = number

    def get_request_url(self) -> str:
        if self.request_url:
            return str(self.request_url)
        return self.url_beside(REQUEST_URL_NAME)

    def get_success_url(self) -> str:
        return resolve_url(self.success_url or settings.LOGIN_REDIRECT_URL)
