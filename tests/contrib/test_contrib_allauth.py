"""django_zhenzi.contrib.allauth through django-allauth's own views, with the Django test client:
phone sign-up, the code sent through the sandbox over HTTP, the verification page, sign-in by
code, wrong codes, the abuse limits. Skipped when django-allauth is not installed."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError
from django.test import Client
from django.urls import reverse

pytest.importorskip("allauth")

from allauth.account.adapter import get_adapter

from django_zhenzi.contrib.allauth.adapter import (
    LOGIN_PURPOSE,
    VERIFICATION_PURPOSE,
    ZhenziAccountAdapter,
)
from django_zhenzi.contrib.allauth.models import UserPhone
from django_zhenzi.models import (
    CODE_MASK,
    Message,
    RateLimit,
    RateLimitRefusal,
    Status,
    VerificationCode,
)

CODE_MESSAGE = "【测试】您的验证码是{code}，{minutes}分钟内有效。"
NUMBER = "13800138000"

# Real commits: codes are sent once the transaction that stores them commits.
pytestmark = [pytest.mark.urls("tests.integration_urls"), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def zhenzi(sandbox, settings):
    """Codes go to the sandbox; allauth's own rate limits (in the cache) start empty."""
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "CODE_MESSAGE": CODE_MESSAGE}
    settings.ACCOUNT_ADAPTER = "django_zhenzi.contrib.allauth.adapter.ZhenziAccountAdapter"
    cache.clear()
    yield sandbox
    cache.clear()


def received_code(sandbox) -> str:
    """The code in the last text the sandbox phone received."""
    return re.search(r"验证码是(\d{6})", sandbox.messages[-1]["message"]).group(1)


def path_of(response) -> str:
    return urlsplit(response["Location"]).path


def logged_in_user(client: Client):
    return get_user_model().objects.filter(pk=client.session.get("_auth_user_id")).first()


def sign_up(client: Client, number: str = NUMBER) -> object:
    response = client.post(reverse("account_signup"), {"phone": number})
    assert response.status_code == 302, response.content.decode()
    assert path_of(response) == reverse("account_verify_phone")
    return response


def signed_up_user(zhenzi, clock, number: str = NUMBER):
    """A user signed up and verified by phone; the clock moved past the cooldown after."""
    client = Client()
    sign_up(client, number)
    response = client.post(reverse("account_verify_phone"), {"code": received_code(zhenzi)})
    assert response.status_code == 302
    clock.move(61)
    return logged_in_user(client)


def test_sign_up_by_phone_then_sign_in_by_code(zhenzi, clock):
    client = Client()
    page = client.get(reverse("account_signup"))
    assert page.status_code == 200
    assert 'name="phone"' in page.content.decode()

    sign_up(client, "+86 138-0013-8000")
    (sent,) = zhenzi.messages
    assert sent["number"] == NUMBER
    assert sent["clientIp"] == "127.0.0.1"
    code = received_code(zhenzi)
    assert sent["message"] == CODE_MESSAGE.format(code=code, minutes=15)
    user = get_user_model().objects.get()
    assert ZhenziAccountAdapter().get_phone(user) == (NUMBER, False)
    assert logged_in_user(client) is None

    page = client.get(reverse("account_verify_phone"))
    assert page.status_code == 200
    assert NUMBER in page.content.decode()
    response = client.post(reverse("account_verify_phone"), {"code": code})
    assert response.status_code == 302
    assert logged_in_user(client) == user
    assert ZhenziAccountAdapter().get_phone(user) == (NUMBER, True)

    client.post(reverse("account_logout"))
    assert logged_in_user(client) is None
    clock.move(61)  # past the cooldown between two codes to one number
    response = client.post(reverse("account_request_login_code"), {"phone": "+8613800138000"})
    assert response.status_code == 302
    assert path_of(response) == reverse("account_confirm_login_code")
    assert len(zhenzi.messages) == 2
    login_code = received_code(zhenzi)
    assert zhenzi.messages[-1]["message"] == CODE_MESSAGE.format(code=login_code, minutes=3)
    response = client.post(reverse("account_confirm_login_code"), {"code": login_code})
    assert response.status_code == 302
    assert logged_in_user(client) == user

    codes = VerificationCode.objects.order_by("created_at")
    assert [code.purpose for code in codes] == [VERIFICATION_PURPOSE, LOGIN_PURPOSE]
    assert [code.sms.status for code in codes] == [Status.SENT, Status.SENT]


def test_codes_are_masked_in_rows_signals_and_admin(zhenzi, received_signals, django_user_model):
    client = Client()
    sign_up(client)
    code = received_code(zhenzi)

    message = Message.objects.get()
    assert message.text == CODE_MESSAGE.format(code=CODE_MASK, minutes=15)
    assert message.content_masked
    stored = [str(row) for row in Message.objects.values()]
    stored += [str(row) for row in VerificationCode.objects.values()]
    assert not any(code in row for row in stored)
    assert received_signals
    assert not any(code in str(kwargs) for _, kwargs in received_signals)

    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("admin", "a@example.com", "pw"))
    for url in (
        reverse("admin:django_zhenzi_message_change", args=[message.pk]),
        reverse("admin:django_zhenzi_verificationcode_changelist"),
        reverse("admin:zhenzi_allauth_userphone_changelist"),
    ):
        page = admin.get(url)
        assert page.status_code == 200
        assert code not in page.content.decode()


def test_a_wrong_code_signs_nobody_in(zhenzi, clock):
    user = signed_up_user(zhenzi, clock)
    client = Client()
    client.post(reverse("account_request_login_code"), {"phone": NUMBER})
    code = received_code(zhenzi)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    response = client.post(reverse("account_confirm_login_code"), {"code": wrong})
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert logged_in_user(client) is None

    response = client.post(reverse("account_confirm_login_code"), {"code": code})
    assert response.status_code == 302
    assert logged_in_user(client) == user


def test_a_wrong_code_at_sign_up_leaves_the_number_unverified(zhenzi):
    client = Client()
    sign_up(client)
    code = received_code(zhenzi)

    response = client.post(
        reverse("account_verify_phone"), {"code": f"{(int(code) + 1) % 10**6:06d}"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert logged_in_user(client) is None
    assert UserPhone.objects.get().verified is False


def test_the_limits_refuse_a_flood_of_code_requests_in_allauths_form(zhenzi, clock, settings):
    signed_up_user(zhenzi, clock)
    settings.ACCOUNT_RATE_LIMITS = False  # allauth's own limits off: django-zhenzi's hold alone
    settings.ZHENZI = {**settings.ZHENZI, "LIMIT_NUMBER_PER_HOUR": 3}
    sent_before = len(zhenzi.messages)

    def request_code() -> object:
        return Client().post(reverse("account_request_login_code"), {"phone": NUMBER})

    assert request_code().status_code == 302
    for _ in range(5):  # inside the cooldown
        refused = request_code()
        assert refused.status_code == 200
        assert refused.context["form"].errors["phone"] == [
            "Too many code requests. Try again in 60 seconds."
        ]
    clock.move(61)
    # The third code to the number this hour (the sign-up code was the first).
    assert request_code().status_code == 302
    clock.move(61)
    refused = request_code()  # the fourth: the hour's cap
    assert refused.status_code == 200
    assert refused.context["form"].errors["phone"] == [
        "Too many code requests. Try again in 57 minutes."
    ]
    assert "Too many code requests" in refused.content.decode()

    assert len(zhenzi.messages) == sent_before + 2
    assert Message.objects.count() == VerificationCode.objects.count() == sent_before + 2
    refusals = {row.limit: row.count for row in RateLimitRefusal.objects.filter(subject=NUMBER)}
    assert refusals == {RateLimit.CODE_COOLDOWN: 5, RateLimit.NUMBER_HOUR: 1}


def test_the_limits_refuse_sign_up_in_its_form(zhenzi, settings):
    settings.ZHENZI = {**settings.ZHENZI, "LIMIT_SITE_PER_MINUTE": 1}
    sign_up(Client(), NUMBER)

    refused = Client().post(reverse("account_signup"), {"phone": "13900139000"})
    assert refused.status_code == 200
    assert refused.context["form"].errors["phone"] == [
        "Too many code requests. Try again in 60 seconds."
    ]
    assert len(zhenzi.messages) == 1
    # allauth saves the user before it sends the code: that account stays, with its number
    # unverified, which claims nothing (signing up again after the wait works).
    assert UserPhone.objects.get(number="13900139000").verified is False


def test_the_limits_refuse_a_resend_with_allauths_message(zhenzi, settings):
    settings.ACCOUNT_PHONE_VERIFICATION_SUPPORTS_RESEND = True
    client = Client()
    sign_up(client)

    response = client.post(reverse("account_verify_phone"), {"action": "resend"}, follow=True)
    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]][-1] == (
        get_adapter().error_messages["rate_limited"]
    )
    assert len(zhenzi.messages) == 1


def test_a_number_outside_mainland_china_is_a_form_error(zhenzi):
    response = Client().post(reverse("account_signup"), {"phone": "+14155552671"})

    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [
        "Enter a mainland China mobile number (11 digits starting with 1)."
    ]
    assert not get_user_model().objects.exists()
    assert zhenzi.messages == []


def test_a_failed_send_says_so(zhenzi, clock):
    signed_up_user(zhenzi, clock)
    zhenzi.fail_next("code1000")

    response = Client().post(reverse("account_request_login_code"), {"phone": NUMBER}, follow=True)
    assert "The code could not be sent. Try again later." in [
        str(message) for message in response.context["messages"]
    ]
    assert VerificationCode.objects.latest("created_at").sms.status == Status.FAILED


# --- The numbers ---------------------------------------------------------------------------------


def test_numbers_are_stored_normalised_and_found_once_verified(django_user_model):
    adapter = ZhenziAccountAdapter()
    user = django_user_model.objects.create_user("one")

    adapter.set_phone(user, "+86 138 0013 8000", False)
    assert adapter.get_phone(user) == (NUMBER, False)
    assert adapter.get_user_by_phone(NUMBER) is None
    adapter.set_phone_verified(user, "+8613800138000")
    assert adapter.get_phone(user) == (NUMBER, True)
    assert adapter.get_user_by_phone("0086 138-0013-8000") == user
    assert adapter.get_user_by_phone("+14155552671") is None
    assert adapter.get_phone(django_user_model.objects.create_user("two")) is None


def test_an_unverified_number_claims_nothing_and_a_verified_one_is_unique(django_user_model):
    adapter = ZhenziAccountAdapter()
    owner, squatter = (django_user_model.objects.create_user(name) for name in ("a", "b"))
    adapter.set_phone(squatter, NUMBER, False)
    adapter.set_phone_verified(owner, NUMBER)
    assert adapter.get_user_by_phone(NUMBER) == owner

    with pytest.raises(IntegrityError):
        adapter.set_phone_verified(squatter, NUMBER)


# --- Views whose form has no phone field --------------------------------------------------------


def signed_up_client(zhenzi, number: str = NUMBER) -> Client:
    """A client signed in by a number it just verified (the clock not moved: inside the
    cooldown for that number)."""
    client = Client()
    sign_up(client, number)
    response = client.post(reverse("account_verify_phone"), {"code": received_code(zhenzi)})
    assert response.status_code == 302
    return client


def test_the_limits_refuse_a_reauthentication_code_with_a_message(zhenzi, clock):
    client = signed_up_client(zhenzi)
    url = reverse("account_request_reauthentication_code")

    response = client.post(url, {"recipient": NUMBER})

    assert response.status_code == 302
    assert response["Location"] == url
    page = client.get(url)
    assert [str(message) for message in page.context["messages"]][-1] == (
        "Too many code requests. Try again in 60 seconds."
    )
    assert len(zhenzi.messages) == 1
    clock.move(61)
    response = client.post(url, {"recipient": NUMBER})
    assert path_of(response) == reverse("account_confirm_reauthentication_code")
    assert len(zhenzi.messages) == 2


def test_the_limits_refuse_a_resend_with_the_wait(zhenzi, settings):
    settings.ACCOUNT_PHONE_VERIFICATION_SUPPORTS_RESEND = True
    settings.ACCOUNT_RATE_LIMITS = False  # allauth's own cooldown off: the send is reached
    client = Client()
    sign_up(client)

    response = client.post(reverse("account_verify_phone"), {"action": "resend"}, follow=True)

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]][-1] == (
        "Too many code requests. Try again in 60 seconds."
    )
    assert len(zhenzi.messages) == 1


def test_the_limits_refuse_a_new_number_in_the_change_form(zhenzi, settings):
    client = signed_up_client(zhenzi)
    settings.ZHENZI = {**settings.ZHENZI, "LIMIT_SITE_PER_MINUTE": 1}

    response = client.post(reverse("account_change_phone"), {"phone": "13900139000"})

    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [
        "Too many code requests. Try again in 60 seconds."
    ]
    assert len(zhenzi.messages) == 1
