"""The shipped code pages: request a code, then check it, through the test client.

This module is its own URLconf: the library's urls.py under two namespaces, and a flow
configured through ``as_view()`` arguments and a subclass, as a site behind a proxy would.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import include, path

import django_zhenzi
from django_zhenzi.models import Message, VerificationCode
from django_zhenzi.verification.views import CheckCodeView, RequestCodeView

LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
CODE_MESSAGE = "【测试】您的验证码是{code}，{minutes}分钟内有效。"
NUMBER = "13800138000"
SESSION_KEY = RequestCodeView.session_key
VERIFIED_KEY = CheckCodeView.verified_session_key


#: A second flow keeps apart from the included one: a purpose and session keys of its own.
SIGNUP_FLOW = {
    "purpose": "signup",
    "session_key": "signup_number",
    "verified_session_key": "signup_verified_number",
}


class ProxiedRequestCodeView(RequestCodeView):
    def get_client_ip(self) -> str | None:
        return self.request.headers.get("X-Real-IP")


urlpatterns = [
    path("codes/", include("django_zhenzi.verification.urls")),
    path("again/", include("django_zhenzi.verification.urls", namespace="again")),
    path(
        "signup/",
        ProxiedRequestCodeView.as_view(success_url="/signup/code/", **SIGNUP_FLOW),
    ),
    path(
        "signup/code/",
        CheckCodeView.as_view(request_url="/signup/", success_url="/welcome/", **SIGNUP_FLOW),
    ),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def codes(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE}


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """``post(client, url, data, **extra)``, running the on-commit callbacks (the send) as a
    real commit would."""

    def send(client: Client, url: str, data: dict[str, str], **extra: str):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data, **extra)

    return send


def code_in(sms) -> str:
    return re.search(r"\d{6}", sms.text).group()


def test_the_request_page_shows_the_number_form():
    response = Client().get("/codes/")
    assert response.status_code == 200
    assert "django_zhenzi/verification/request_code.html" in [t.name for t in response.templates]
    assert re.search(r'<input[^>]*name="number"', response.content.decode())


def test_a_wrong_number_is_refused_and_nothing_is_stored(post):
    response = post(Client(), "/codes/", {"number": "12345"})
    assert response.status_code == 200
    assert "Enter a mainland China mobile number" in response.content.decode()
    assert not Message.objects.exists()
    assert not VerificationCode.objects.exists()


def test_a_sent_code_leads_to_the_check_page_with_the_number_in_the_session(post):
    client = Client()
    response = post(client, "/codes/", {"number": "+86 138 0013 8000"}, REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 302
    assert response["Location"] == "/codes/check/"
    assert client.session[SESSION_KEY] == NUMBER
    (sms,) = django_zhenzi.outbox
    assert (sms.number, sms.client_ip) == (NUMBER, "192.0.2.7")
    assert VerificationCode.objects.get().purpose == "login"
    page = client.get("/codes/check/").content.decode()
    assert f"A code was sent to {NUMBER}." in page
    # "Send another code" goes back with the number filled in.
    again = client.get("/codes/").content.decode()
    assert re.search(rf'<input[^>]*name="number"[^>]*value="{NUMBER}"', again), again


def test_a_request_an_abuse_limit_refuses_answers_429_with_retry_after(post):
    client = Client()
    post(client, "/codes/", {"number": NUMBER})
    refused = post(client, "/codes/", {"number": NUMBER})
    assert refused.status_code == 429
    assert 55 <= int(refused["Retry-After"]) <= 60
    assert "Too many code requests. Try again in" in refused.content.decode()
    assert len(django_zhenzi.outbox) == 1


def test_the_check_page_without_a_number_goes_to_the_request_page():
    response = Client().get("/codes/check/")
    assert response.status_code == 302
    assert response["Location"] == "/codes/"
    assert Client().get("/again/check/")["Location"] == "/again/"  # its own namespace's page


def test_a_wrong_code_is_refused_and_the_number_stays(post):
    client = Client()
    post(client, "/codes/", {"number": NUMBER})
    code = code_in(django_zhenzi.outbox[0])
    wrong = "000000" if code != "000000" else "111111"
    response = client.post("/codes/check/", {"code": wrong})
    assert response.status_code == 200
    assert "The code is wrong or has expired" in response.content.decode()
    assert client.session[SESSION_KEY] == NUMBER
    assert VERIFIED_KEY not in client.session
    assert VerificationCode.objects.get().state == VerificationCode.State.ACTIVE


def test_the_right_code_verifies_the_number_and_redirects(post, settings):
    settings.LOGIN_REDIRECT_URL = "/account/"
    client = Client()
    post(client, "/codes/", {"number": NUMBER})
    response = client.post("/codes/check/", {"code": code_in(django_zhenzi.outbox[0])})
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert client.session[VERIFIED_KEY] == NUMBER
    assert SESSION_KEY not in client.session
    assert VerificationCode.objects.get().state == VerificationCode.State.USED


def test_as_view_arguments_and_a_subclass_configure_a_flow(post):
    client = Client()
    response = post(
        client, "/signup/", {"number": NUMBER}, REMOTE_ADDR="10.0.0.1", HTTP_X_REAL_IP="192.0.2.9"
    )
    assert response["Location"] == "/signup/code/"
    assert client.session["signup_number"] == NUMBER
    assert SESSION_KEY not in client.session
    assert django_zhenzi.outbox[0].client_ip == "192.0.2.9"
    assert VerificationCode.objects.get().purpose == "signup"
    # The default flow has no number, so it does not see this one.
    assert client.get("/codes/check/")["Location"] == "/codes/"
    assert Client().get("/signup/code/")["Location"] == "/signup/"

    right = client.post("/signup/code/", {"code": code_in(django_zhenzi.outbox[0])})
    assert right["Location"] == "/welcome/"
    assert client.session["signup_verified_number"] == NUMBER
    assert VERIFIED_KEY not in client.session


def test_the_urls_included_twice_are_one_flow_and_a_flow_of_its_own_stays_apart(post, clock):
    client = Client()
    post(client, "/codes/", {"number": NUMBER})
    # Both includes check purpose "login" with the same session keys: one flow, not two.
    shared = client.post("/again/check/", {"code": code_in(django_zhenzi.outbox[0])})
    assert shared.status_code == 302
    assert client.session[VERIFIED_KEY] == NUMBER

    client = Client()
    clock.move(61)  # past the cooldown between two codes to one number
    post(client, "/signup/", {"number": NUMBER}, HTTP_X_REAL_IP="192.0.2.9")
    signup_code = code_in(django_zhenzi.outbox[-1])
    clock.move(61)
    post(client, "/codes/", {"number": NUMBER})
    refused = client.post("/codes/check/", {"code": signup_code})
    assert refused.status_code == 200
    assert refused.context["form"].errors
    assert client.post("/signup/code/", {"code": signup_code})["Location"] == "/welcome/"
    assert client.session["signup_verified_number"] == NUMBER
    assert VERIFIED_KEY not in client.session


def test_only_get_and_post_reach_the_pages():
    assert Client().put("/codes/", "number=13800138000").status_code == 405
    assert not VerificationCode.objects.exists()
