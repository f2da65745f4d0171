"""A code-request page and a code-check page, built on the verification forms the way a site
would (the example project follows the same pattern). Wired in tests/urls.py under /codes/."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template import engines
from django.urls import path
from django.views.decorators.http import require_http_methods

from django_zhenzi.verification.forms import CodeRequestForm, VerificationCodeForm

app_name = "codes"

PAGE = engines["django"].from_string(
    '<form method="post">{% csrf_token %}{{ form.as_div }}<button>OK</button></form>'
)
SESSION_NUMBER = "code_number"


def render(request: HttpRequest, form: CodeRequestForm | VerificationCodeForm) -> HttpResponse:
    return HttpResponse(PAGE.render({"form": form}, request))


@require_http_methods(["GET", "POST"])
def request_code(request: HttpRequest) -> HttpResponse:
    form = CodeRequestForm(
        request.POST or None, purpose="login", client_ip=request.META.get("REMOTE_ADDR")
    )
    if request.method == "POST" and form.is_valid() and form.send():
        request.session[SESSION_NUMBER] = form.cleaned_data["number"]
        return redirect("codes:check")
    response = render(request, form)
    if form.retry_after is not None:
        response.status_code = 429
        response["Retry-After"] = str(form.retry_after)
    return response


@require_http_methods(["GET", "POST"])
def check_code(request: HttpRequest) -> HttpResponse:
    number = request.session.get(SESSION_NUMBER)
    if not number:
        return redirect("codes:request")
    form = VerificationCodeForm(request.POST or None, number=number, purpose="login")
    if request.method == "POST" and form.is_valid():
        del request.session[SESSION_NUMBER]
        request.session["verified_number"] = number
        return HttpResponse("verified")
    return render(request, form)


urlpatterns = [
    path("request/", request_code, name="request"),
    path("check/", check_code, name="check"),
]
