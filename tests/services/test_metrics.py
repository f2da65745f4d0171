"""/zhenzi/metrics.json (services.metrics) through the test client, on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from django_zhenzi.models import BalanceSnapshot, Message, Status, StatusReport

pytestmark = pytest.mark.django_db


def permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="django_zhenzi", codename=codename)


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def message(status: str = Status.QUEUED, **fields) -> Message:
    return Message.objects.create(
        number="13800138000", text="【测试】通知", status=status, **fields
    )


METRICS_URL = "/zhenzi/metrics.json"


def test_metrics_are_for_staff_who_may_view_messages(client, django_user_model):
    assert client.get(METRICS_URL).status_code == 403
    user = django_user_model.objects.create_user("someone", password="unused")
    user.user_permissions.add(permission("view_message"))
    client.force_login(user)
    assert client.get(METRICS_URL).status_code == 403  # not staff
    user.is_staff = True
    user.save()
    assert client.get(METRICS_URL).status_code == 200
    assert client.post(METRICS_URL).status_code == 405
    user.user_permissions.clear()
    assert client.get(METRICS_URL).status_code == 403  # staff, but not for messages


def test_the_balance_only_for_those_who_may_view_it(client, django_user_model):
    BalanceSnapshot.objects.create(balance=4321, recorded_at=ago(60))
    user = django_user_model.objects.create_user("staff", password="unused", is_staff=True)
    user.user_permissions.add(permission("view_message"))
    client.force_login(user)
    assert "balance" not in client.get(METRICS_URL).json()
    user.user_permissions.add(permission("view_balance"))
    user = django_user_model.objects.get(pk=user.pk)  # no cached permissions
    client.force_login(user)
    assert client.get(METRICS_URL).json()["balance"]["balance"] == 4321


def test_metrics_shape(admin_client):
    message(next_attempt_at=ago(120))
    message(next_attempt_at=timezone.now() + timedelta(hours=1))
    message(Status.UNKNOWN, next_attempt_at=ago(0))
    sent = message(Status.DELIVERED, sent_at=ago(600))
    old = message(Status.FAILED)
    Message.objects.filter(pk=old.pk).update(created_at=ago(3 * 86400))
    report = StatusReport.objects.create(
        message=sent, reported_message_id=sent.message_id, status=Status.DELIVERED,
        source=StatusReport.Source.CALLBACK, received_at=ago(500),
    )  # fmt: skip
    snapshot = BalanceSnapshot.objects.create(balance=4321, recorded_at=ago(60))

    response = admin_client.get(METRICS_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    data = response.json()
    every_status = {status.value: 0 for status in Status}
    assert data["statuses"] == {
        "24h": {**every_status, "queued": 2, "unknown": 1, "delivered": 1},
        "7d": {**every_status, "queued": 2, "unknown": 1, "delivered": 1, "failed": 1},
    }
    assert data["queue"]["queued"] == 2
    assert data["queue"]["due"] == 1
    assert 120 <= data["queue"]["oldest_due_seconds"] < 180
    assert data["unknown"] == 1
    received = report.received_at.isoformat()
    assert data["last_report_at"] == data["last_callback_report_at"] == received
    assert data["balance"] == {"balance": 4321, "recorded_at": snapshot.recorded_at.isoformat()}
    assert set(data) == {
        "generated_at", "statuses", "queue", "unknown", "last_report_at",
        "last_callback_report_at", "balance",
    }  # fmt: skip


def test_metrics_of_an_empty_site(admin_client):
    data = admin_client.get(METRICS_URL).json()
    assert data["queue"] == {"queued": 0, "due": 0, "oldest_due_seconds": None}
    assert data["last_report_at"] is None
    assert data["balance"] is None
