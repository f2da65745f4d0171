"""django_zhenzi.contrib.two_factor through django-two-factor-auth's own views, with the Django
test client: SMS two-factor set up and used to sign in, the tokens sent through the sandbox over
HTTP. Skipped when django-two-factor-auth is not installed."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client
from django.urls import reverse

pytest.importorskip("two_factor")

from two_factor.middleware import threadlocals
from two_factor.plugins.phonenumber.models import PhoneDevice

from django_zhenzi.client import ZhenziInputError
from django_zhenzi.contrib.two_factor import (
    PURPOSE,
    ZhenziCallsUnsupported,
    ZhenziGateway,
)
from django_zhenzi.models import (
    CODE_MASK,
    Message,
    RateLimit,
    RateLimitRefusal,
    VerificationCode,
)

CODE_MESSAGE = "【测试】您的验证码是{code}，{minutes}分钟内有效。"
NUMBER = "13800138000"
PASSWORD = "correct horse battery staple"

# Real commits: tokens are sent once the transaction that stores them commits.
pytestmark = [pytest.mark.urls("tests.integration_urls"), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def zhenzi(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "CODE_MESSAGE": CODE_MESSAGE}
    settings.TWO_FACTOR_SMS_GATEWAY = "django_zhenzi.contrib.two_factor.ZhenziGateway"
    settings.LOGIN_URL = "two_factor:login"
    settings.LOGIN_REDIRECT_URL = "/done/"
    return sandbox


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("li", password=PASSWORD)


def received_token(sandbox) -> str:
    return re.search(r"验证码是(\d{6})", sandbox.messages[-1]["message"]).group(1)


def set_up_sms(client: Client, number: str):
    """Walk two-factor's setup wizard to its validation step; the last response."""
    url = reverse("two_factor:setup")
    assert client.get(url).status_code == 200
    for step, data in (
        ("welcome", {}),
        ("method", {"method-method": "sms"}),
        ("sms", {"sms-number": number}),
    ):
        response = client.post(url, {"setup_view-current_step": step, **data})
        assert response.status_code == 200, step
    return response


def test_enable_sms_two_factor_then_sign_in_with_the_token(zhenzi, user, clock):
    client = Client()
    client.force_login(user)
    set_up_sms(client, "+86 138 0013 8000")
    (sent,) = zhenzi.messages
    assert sent["number"] == NUMBER
    token = received_token(zhenzi)
    assert sent["message"] == CODE_MESSAGE.format(code=token, minutes=3)
    response = client.post(
        reverse("two_factor:setup"),
        {"setup_view-current_step": "validation", "validation-token": token},
    )
    assert response.status_code == 302
    device = PhoneDevice.objects.get(user=user)
    assert (str(device.number), device.method) == ("+8613800138000", "sms")

    clock.move(61)  # past the cooldown between two codes to one number
    client = Client()
    response = client.post(
        reverse("two_factor:login"),
        {"login_view-current_step": "auth", "auth-username": "li", "auth-password": PASSWORD},
    )
    assert response.status_code == 200
    assert len(zhenzi.messages) == 2
    login_token = received_token(zhenzi)
    response = client.post(
        reverse("two_factor:login"),
        {"login_view-current_step": "token", "token-otp_token": login_token},
    )
    assert response.status_code == 302
    assert response["Location"] == "/done/"
    assert client.session["_auth_user_id"] == str(user.pk)

    codes = VerificationCode.objects.all()
    assert {code.purpose for code in codes} == {PURPOSE}
    for message in Message.objects.all():
        assert message.text == CODE_MESSAGE.format(code=CODE_MASK, minutes=3)
        assert token not in str(message.__dict__) and login_token not in str(message.__dict__)


def test_a_number_outside_mainland_china_is_refused_at_setup(zhenzi, user, caplog):
    caplog.set_level(logging.ERROR)
    client = Client()
    client.force_login(user)

    response = set_up_sms(client, "+14155552671")
    assert "encountered an issue" in response.content.decode()
    assert zhenzi.messages == []
    assert not PhoneDevice.objects.exists()
    (record,) = [record for record in caplog.records if record.exc_info]
    assert isinstance(record.exc_info[1], ZhenziInputError)
    assert "+14****2671 is not a mainland China mobile number" in str(record.exc_info[1])


def test_a_token_refused_by_the_limits_is_logged_not_raised(zhenzi, user, caplog):
    device = PhoneDevice.objects.create(user=user, name="default", number="+8613800138000")
    gateway = ZhenziGateway()
    gateway.send_sms(device, "123456")
    caplog.set_level(logging.WARNING, logger="django_zhenzi")

    gateway.send_sms(device, "654321")  # inside the cooldown
    assert len(zhenzi.messages) == 1
    assert "138****8000 not sent: refused by code_cooldown" in caplog.text
    assert "654321" not in caplog.text
    assert RateLimitRefusal.objects.get().limit == RateLimit.CODE_COOLDOWN


def test_make_call_refuses(user):
    device = PhoneDevice(user=user, name="default", number="+8613800138000", method="call")
    with pytest.raises(ZhenziCallsUnsupported, match="cannot call"):
        ZhenziGateway().make_call(device, "123456")


@pytest.fixture
def thread_locals(settings):
    """two-factor's ThreadLocals middleware; the request it keeps is dropped afterwards (it
    never drops it itself)."""
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "two_factor.middleware.threadlocals.ThreadLocals"]
    yield
    vars(threadlocals._thread_locals).pop("request", None)


def test_with_two_factors_thread_locals_tokens_count_against_the_client_ip(
    zhenzi, user, django_user_model, settings, thread_locals
):
    settings.ZHENZI = {**settings.ZHENZI, "LIMIT_IP_PER_HOUR": 1}
    client = Client()
    client.force_login(user)
    set_up_sms(client, "+8613800138000")
    (sent,) = zhenzi.messages
    assert sent["clientIp"] == "127.0.0.1"
    assert VerificationCode.objects.get().client_ip == "127.0.0.1"

    other = Client()  # another user, another number, the same address
    other.force_login(django_user_model.objects.create_user("wang", password=PASSWORD))
    set_up_sms(other, "+8613900139000")
    assert len(zhenzi.messages) == 1
    assert RateLimitRefusal.objects.get().limit == RateLimit.IP_HOUR
