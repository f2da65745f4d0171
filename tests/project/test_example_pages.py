"""The example project's sign-in pages, in this process."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from django_zhenzi.models import RateCounter
from django_zhenzi.sandbox import Sandbox
from tests.project.example import (
    EXAMPLE,
)

pytestmark = pytest.mark.slow


# --- The sign-in pages, in this process --------------------------------------------------------

UNDELIVERABLE = "13800138004"  # the sandbox's default undeliverable suffix is "4"


@pytest.fixture
def example_site(monkeypatch, settings, live_server) -> Iterator[Sandbox]:
    """The example's demo app served by this process in sandbox mode (the test client for its
    pages, a live server for the callback), with a sandbox that reports back through it."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "demo"]
    settings.ROOT_URLCONF = "tests.example_urls"
    settings.LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
    settings.USE_SANDBOX = True
    callback = live_server.url + reverse(
        "django_zhenzi:callback", kwargs={"token": settings.ZHENZI["CALLBACK_TOKEN"]}
    )
    with Sandbox(
        app_id="test-app",
        app_secret="test-secret-value",
        callback_url=callback,
        report_delay=0.05,
    ) as provider:
        settings.ZHENZI = {
            **settings.ZHENZI,
            "API_URL": provider.url,
            "CODE_MESSAGE": "【榛子沙箱】您的验证码是{code}，{minutes}分钟内有效。",
        }
        yield provider


def visitor(language: str = "en") -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE=language)


def request_code_for(client: Client, number: str) -> HttpResponse:
    return client.post("/", {"number": number}, follow=True)


@pytest.mark.django_db(transaction=True)
def test_the_code_page_says_when_the_code_could_not_be_delivered(example_site):
    client = visitor()
    sent = request_code_for(client, UNDELIVERABLE)
    assert sent.request["PATH_INFO"] == "/verify/"
    assert example_site.wait_for_reports(1, timeout=20), example_site.reports
    page = client.get("/verify/").content.decode()
    assert f"The code could not be delivered to {UNDELIVERABLE}." in page
    assert "ask for a new code" in page
    assert "A code was sent" not in page
    assert 'name="code"' not in page  # no form for a code that never came

    chinese = visitor("zh-hans")
    request_code_for(chinese, "13900139004")
    assert example_site.wait_for_reports(2, timeout=20), example_site.reports
    assert "验证码未能送达 13900139004" in chinese.get("/verify/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_code_page_of_a_delivered_code_says_sent(example_site):
    client = visitor()
    request_code_for(client, "13800138000")
    assert example_site.wait_for_reports(1, timeout=20), example_site.reports
    page = client.get("/verify/").content.decode()
    assert "A code was sent to 13800138000." in page
    assert "could not be delivered" not in page
    assert "data-sandbox-sms" in page


@pytest.mark.django_db(transaction=True)
def test_send_another_code_keeps_the_number(example_site):
    client = visitor()
    request_code_for(client, "13800138000")
    code_page = client.get("/verify/").content.decode()
    assert 'href="/">Send another code' in code_page
    form = client.get("/").content.decode()
    assert re.search(r'<input[^>]*name="number"[^>]*value="13800138000"', form), form


@pytest.mark.django_db(transaction=True)
def test_after_the_last_wrong_try_the_page_says_to_ask_for_a_new_code(example_site, settings):
    settings.ZHENZI = {**settings.ZHENZI, "CODE_MAX_TRIES": 3}
    client = visitor()
    request_code_for(client, "13800138000")
    for _try in range(2):
        page = client.post("/verify/", {"code": "000000"}).content.decode()
        assert "The code is wrong" in page
        assert "last try" not in page
        assert 'name="code"' in page
    last = client.post("/verify/", {"code": "000000"}).content.decode()
    assert "That was the last try for this code. Ask for a new code." in last
    assert 'name="code"' not in last
    assert "That was the last try" in client.get("/verify/").content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("language", "cooldown_wait", "hourly_wait"),
    [
        ("en", "Try again in 60 seconds.", "Try again in 60 minutes."),
        ("zh-hans", "请在 60 秒后重试", "请在 60 分钟后重试"),
    ],
)
def test_a_refused_request_shows_the_real_wait(
    example_site, settings, language, cooldown_wait, hourly_wait
):
    client = visitor(language)
    request_code_for(client, "13800138000")
    refused = client.post("/", {"number": "13800138000"})
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert cooldown_wait in refused.content.decode()

    settings.ZHENZI = {**settings.ZHENZI, "CODE_COOLDOWN": 1, "LIMIT_NUMBER_PER_HOUR": 1}
    request_code_for(client, "13900139000")
    refused = client.post("/", {"number": "13900139000"})
    assert refused.status_code == 429
    assert 3590 < int(refused["Retry-After"]) <= 3600
    assert hourly_wait in refused.content.decode()
    # The documentation's way to let a locked-out owner in at once (docs/verification.rst).
    RateCounter.objects.filter(subject="13900139000").delete()
    assert request_code_for(client, "13900139000").request["PATH_INFO"] == "/verify/"
