"""django_zhenzi.contrib.health_check through django-health-check's own view (the package's
public entry point), over this module's URLs; skipped when the package is not installed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import path
from django.utils import timezone

health_check_views = pytest.importorskip("health_check.views")

from django_zhenzi.contrib.health_check import CHECKS  # noqa: E402
from django_zhenzi.models import Message, Status  # noqa: E402

urlpatterns = [
    path("ht/", health_check_views.HealthCheckView.as_view(checks=CHECKS)),
    path(
        "ht-all/",
        health_check_views.HealthCheckView.as_view(
            checks=["health_check.checks.Database", "health_check.checks.Cache", *CHECKS]
        ),
    ),
]

# The checks read the database from the view's executor threads: committed rows only.
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]


def test_a_healthy_site_answers_200(healthy_sandbox, client):
    response = client.get("/ht/?format=json")
    assert response.status_code == 200
    assert response.json() == {
        "ZhenziProvider()": "OK",
        "ZhenziQueue()": "OK",
        "ZhenziReports()": "OK",
    }


def test_beside_the_packages_own_checks(healthy_sandbox, client):
    response = client.get("/ht-all/?format=json")
    assert response.status_code == 200
    assert list(response.json().values()) == ["OK"] * 5


def test_problems_fail_the_check_with_their_message(healthy_sandbox, client):
    healthy_sandbox.balance = 5
    due = timezone.now() - timedelta(hours=1)
    Message.objects.create(number="13800138000", text="【测试】通知", next_attempt_at=due)
    response = client.get("/ht/?format=json")
    assert response.status_code == 500
    answer = response.json()
    assert answer["ZhenziProvider()"].startswith("Warning: The balance is low: 5 SMS left")
    assert answer["ZhenziQueue()"].startswith(
        "Unavailable: 1 queued message has been due for more than 300 seconds"
    )
    assert answer["ZhenziReports()"] == "OK"
    Message.objects.create(
        number="13800138000", text="【测试】通知", status=Status.SENT,
        sent_at=timezone.now() - timedelta(hours=2),
    )  # fmt: skip
    assert client.get("/ht/?format=json").json()["ZhenziReports()"].startswith("Warning: 1 message")


def test_an_unreachable_provider_is_unavailable_without_the_secret(settings, client):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": "http://127.0.0.1:9"}
    cache.clear()
    response = client.get("/ht/?format=text")
    assert response.status_code == 500
    text = response.content.decode()
    assert "ZhenziProvider(): Unavailable: Cannot read the balance from Zhenzi" in text
    assert settings.ZHENZI["APP_SECRET"] not in text
