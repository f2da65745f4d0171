"""The message list's actions: resend and refresh status."""

from __future__ import annotations

import pytest
from django.utils import timezone

from django_zhenzi import services, signals
from django_zhenzi.admin import actions as admin_actions
from django_zhenzi.models import Message, Status, StatusReport
from tests.admin.pages import (
    APP_SECRET,
    CLOSED_PORT_URL,
    MESSAGES_URL,
    make_message,
    messages_of,
    run_action,
    sent_through_sandbox,
)

pytestmark = pytest.mark.django_db


# --- Actions -------------------------------------------------------------------------------------


def test_resend_requeues_failed_messages_and_says_which_were_skipped(login_with):
    failed = make_message(status=Status.FAILED, error_code=108, attempts=5)
    delivered = make_message(status=Status.DELIVERED)
    client = login_with("view_message", "send_message")

    response = run_action(client, "resend_failed", [failed, delivered])

    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert failed.status == Status.QUEUED
    assert failed.next_attempt_at <= timezone.now()
    assert failed.attempts == 5  # history kept
    assert delivered.status == Status.DELIVERED
    assert messages_of(response) == [
        "1 failed message was queued to be sent again.",
        "1 message was skipped: only failed messages can be resent.",
    ]


def test_resend_handles_big_selections_in_chunks_and_signals_each_change(admin_client, monkeypatch):
    monkeypatch.setattr(services.maintenance, "REQUEUE_CHUNK_SIZE", 2)
    failed = [make_message(status=Status.FAILED) for _ in range(5)]
    changes = []

    def record(sender, message, old_status, new_status, **kwargs):
        changes.append((message.pk, old_status, new_status))

    signals.status_changed.connect(record)
    try:
        run_action(admin_client, "resend_failed", failed)
    finally:
        signals.status_changed.disconnect(record)

    assert set(Message.objects.values_list("status", flat=True)) == {Status.QUEUED}
    assert sorted(changes) == [(m.pk, Status.FAILED, Status.QUEUED) for m in failed]


def test_resent_messages_are_sent_by_the_workers(zhenzi, admin_client):
    failed = make_message(status=Status.FAILED, error_code=108)
    run_action(admin_client, "resend_failed", [failed])
    services.run_workers()
    failed.refresh_from_db()
    assert failed.status == Status.SENT
    assert zhenzi.accepted_count(failed.message_id) == 1


def test_resend_needs_the_send_permission(login_with):
    failed = make_message(status=Status.FAILED)
    client = login_with("view_message", "change_message")

    page = client.get(MESSAGES_URL).content.decode()
    response = run_action(client, "resend_failed", [failed])

    assert 'value="resend_failed"' not in page
    failed.refresh_from_db()
    assert failed.status == Status.FAILED
    assert messages_of(response) == ["No action selected."]


def test_refresh_status_asks_the_provider(zhenzi, login_with, django_capture_on_commit_callbacks):
    delivered, undelivered = sent_through_sandbox(
        ["13800138000", "13800138004"], django_capture_on_commit_callbacks
    )
    queued = make_message(status=Status.QUEUED)
    client = login_with("view_message", "change_message")

    response = run_action(client, "refresh_status", [delivered, undelivered, queued])

    assert Message.objects.get(pk=delivered.pk).status == Status.DELIVERED
    assert Message.objects.get(pk=undelivered.pk).status == Status.UNDELIVERED
    assert StatusReport.objects.filter(source=StatusReport.Source.POLL).count() == 2
    assert messages_of(response) == [
        "Asked Zhenzi about 2 messages; 2 now have a final status.",
        "1 message was skipped: only sent messages and messages of unknown outcome can be "
        "refreshed.",
    ]


def test_refresh_status_when_the_provider_is_down_warns(
    zhenzi, settings, admin_client, django_capture_on_commit_callbacks
):
    sent = sent_through_sandbox(["13800138000", "13900139000"], django_capture_on_commit_callbacks)
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}

    response = run_action(admin_client, "refresh_status", sent)

    assert response.status_code == 200
    (warning,) = messages_of(response)
    assert warning.startswith("Zhenzi could not be reached")
    assert warning.endswith("2 messages were not checked.")
    assert {m.status for m in Message.objects.all()} == {Status.SENT}


def test_refresh_status_when_the_provider_refuses_explains_the_code(
    zhenzi, admin_client, django_capture_on_commit_callbacks
):
    sent = sent_through_sandbox(["13800138000"], django_capture_on_commit_callbacks)
    zhenzi.app_secret = "changed-in-the-console"

    response = run_action(admin_client, "refresh_status", sent)

    (warning,) = messages_of(response)
    assert "error 110: Wrong appSecret" in warning
    assert APP_SECRET not in response.content.decode()


def test_refresh_status_checks_a_bounded_number_at_a_time(
    zhenzi, admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(admin_actions, "REFRESH_LIMIT", 1)
    sent = sent_through_sandbox(["13800138000", "13900139000"], django_capture_on_commit_callbacks)

    response = run_action(admin_client, "refresh_status", sent)

    assert zhenzi.requests_by_endpoint["/smslog/findSmsByMessageId.do"] == 1
    assert messages_of(response)[-1] == (
        "Only 1 messages are checked at a time; 1 was left: select it again to check it."
    )


def test_refresh_status_needs_the_change_permission(zhenzi, login_with):
    sent = make_message(status=Status.SENT)
    client = login_with("view_message", "send_message")
    assert 'value="refresh_status"' not in client.get(MESSAGES_URL).content.decode()
    run_action(client, "refresh_status", [sent])
    assert zhenzi.requests_total == 0
