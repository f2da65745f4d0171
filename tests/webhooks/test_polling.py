"""Polling the provider for statuses (services.sync_statuses)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from django_zhenzi import send_sms, services
from django_zhenzi.models import Message, StatusReport
from django_zhenzi.sandbox import Sandbox
from django_zhenzi.status import Status
from tests.webhooks.callback_requests import (
    APP_SECRET,
    LOCMEM,
    VERIFICATION_TEXT,
    make_message,
    post_form,
    sandbox_report,
    status_changes,
)

pytestmark = pytest.mark.django_db


# --- Polling (services.sync_statuses) -------------------------------------------------------------


@pytest.fixture
def quick_sandbox(settings) -> Iterator[Sandbox]:
    """A sandbox whose carrier reports arrive at once (no callback), used by the app."""
    with Sandbox(port=0, app_id="test-app", app_secret=APP_SECRET, report_delay=0) as running:
        settings.ZHENZI = {**settings.ZHENZI, "API_URL": running.url}
        yield running


FIND = "/smslog/findSmsByMessageId.do"


def send_through_sandbox(numbers: list[str], django_capture_on_commit_callbacks) -> list[Message]:
    with django_capture_on_commit_callbacks(execute=True):
        rows = send_sms(numbers, VERIFICATION_TEXT)
    return [Message.objects.get(pk=row.pk) for row in rows]


def test_sync_statuses_applies_polled_records(
    quick_sandbox, received_signals, django_capture_on_commit_callbacks
):
    delivered, undelivered = send_through_sandbox(
        ["13800138000", "13800138004"], django_capture_on_commit_callbacks
    )
    assert {delivered.status, undelivered.status} == {Status.SENT}
    received_signals.clear()

    assert services.sync_statuses(older_than=0) == 2

    delivered.refresh_from_db()
    undelivered.refresh_from_db()
    assert (delivered.status, delivered.provider_status) == (Status.DELIVERED, "success")
    assert (undelivered.status, undelivered.provider_status) == (Status.UNDELIVERED, "fail")
    assert sorted(status_changes(received_signals)) == [
        (Status.SENT, Status.DELIVERED),
        (Status.SENT, Status.UNDELIVERED),
    ]
    reports = StatusReport.objects.all()
    assert {report.source for report in reports} == {StatusReport.Source.POLL}
    for report in reports:
        assert report.payload["messageId"] == report.reported_message_id
        assert APP_SECRET not in json.dumps(report.payload)
    assert services.sync_statuses(older_than=0) == 0
    assert quick_sandbox.requests_by_endpoint[FIND] == 2


def test_sync_statuses_waits_and_skips_unfinished(
    quick_sandbox, django_capture_on_commit_callbacks
):
    [message] = send_through_sandbox(["13800138000"], django_capture_on_commit_callbacks)

    assert services.sync_statuses(older_than=3600) == 0
    assert quick_sandbox.requests_by_endpoint[FIND] == 0

    quick_sandbox.report_delay = 3600
    [pending] = send_through_sandbox(["13900139000"], django_capture_on_commit_callbacks)
    assert services.sync_statuses(older_than=0) == 1
    pending.refresh_from_db()
    assert pending.status == Status.SENT  # the provider still says "sending"
    assert StatusReport.objects.filter(message=pending).count() == 0
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED


def test_sync_statuses_stops_at_a_provider_error(
    quick_sandbox, caplog, django_capture_on_commit_callbacks
):
    first, second = send_through_sandbox(
        ["13800138000", "13900139000"], django_capture_on_commit_callbacks
    )
    quick_sandbox.fail_next("code1000")

    with caplog.at_level(logging.WARNING, logger="django_zhenzi"):
        assert services.sync_statuses(older_than=0) == 0  # a provider that is down: one call

    assert "Status sync stopped at" in caplog.text
    assert APP_SECRET not in caplog.text
    assert services.sync_statuses(older_than=0) == 2
    assert {m.status for m in Message.objects.filter(pk__in=[first.pk, second.pk])} == {
        Status.DELIVERED
    }


def test_sync_statuses_without_lookups_does_nothing(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    message = make_message()
    Message.objects.filter(pk=message.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    assert services.sync_statuses(older_than=0) == 0
    message.refresh_from_db()
    assert message.status == Status.SENT


def test_sync_statuses_links_orphans_first(settings, csrf_client):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    assert post_form(csrf_client, sandbox_report("early", "fail")).status_code == 200
    message = make_message(message_id="early")

    services.sync_statuses(older_than=0)

    message.refresh_from_db()
    assert message.status == Status.UNDELIVERED
    assert StatusReport.objects.get().message == message
