"""A code's message is sent at most once, and never with its mask."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from django_zhenzi import services
from django_zhenzi.models import (
    CODE_MASK,
    Message,
    Status,
    StatusReport,
)
from django_zhenzi.verification import check_code, send_code
from tests.verification.codes import (
    CODE_MESSAGE,
    NUMBER,
    sent_code,
)

pytestmark = pytest.mark.django_db


# --- At most once, and never the mask ------------------------------------------------------------


def test_a_transient_failure_fails_the_code_message_instead_of_queueing_it(
    sandboxed_codes, committed
):
    sandboxed_codes.fail_next("code1000")
    row = committed(send_code, NUMBER)

    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.FAILED
    assert message.error_text.startswith(services.MASKED_NOT_RESENT)
    assert message.error_code == 1000
    assert services.run_workers().claimed == 0
    assert sandboxed_codes.messages == []


def test_an_ambiguous_code_message_is_reconciled_and_never_resent(
    sandboxed_codes, clock, committed
):
    sandboxed_codes.fail_next("http500")  # ambiguous, but the provider never processed it
    row = committed(send_code, NUMBER)
    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.UNKNOWN

    clock.move(11)
    assert services.run_workers().reconciled == 1  # not found yet: asked again later
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN
    clock.move(600)  # past RECONCILE_SETTLE: "not found" is believed
    assert services.run_workers().reconciled == 1
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_text.startswith(services.MASKED_NOT_RESENT)
    assert services.run_workers().claimed == 0
    assert sandboxed_codes.messages == []


def test_a_code_message_that_arrived_is_reconciled_with_its_record_masked(
    sandboxed_codes, clock, committed
):
    sandboxed_codes.fail_next("cut")  # processed, but the answer is lost
    row = committed(send_code, NUMBER)
    (accepted,) = sandboxed_codes.messages
    code = re.search(r"\d{6}", accepted["message"]).group()
    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.UNKNOWN

    clock.move(11)
    assert services.run_workers().reconciled == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    record = message.provider_answer["findSmsByMessageId"]
    assert record["messageId"] == message.message_id
    assert record["message"] == CODE_MASK
    assert code not in str(message.provider_answer)
    assert sandboxed_codes.request_count(message.message_id) == 1
    assert check_code(NUMBER, code) is True


def test_a_requeued_code_message_fails_rather_than_send_the_mask(sandboxed_codes, committed):
    row = committed(send_code, NUMBER)
    Message.objects.filter(pk=row.sms.pk).update(status=Status.QUEUED, claim_token="")

    services.run_workers()
    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.FAILED
    assert message.error_text == services.MASKED_NOT_RESENT
    assert len(sandboxed_codes.messages) == 1
    assert all(CODE_MASK not in sent["message"] for sent in sandboxed_codes.messages)


def test_reports_of_code_messages_are_stored_masked(sandboxed_codes, committed):
    row = committed(send_code, NUMBER)
    code = re.search(r"\d{6}", sandboxed_codes.messages[0]["message"]).group()
    message_id = row.sms.message_id

    # The provider's callback body is not published: one that echoes the text is masked too.
    report = services.apply_report(
        services.ReportData(
            message_id,
            "DELIVRD",
            NUMBER,
            {"messageId": message_id, "status": "DELIVRD", "content": f"验证码{code}"},
        )
    )
    assert report.payload == {"messageId": message_id, "status": "DELIVRD", "content": CODE_MASK}
    assert Message.objects.get(pk=row.sms.pk).status == Status.DELIVERED
    assert not StatusReport.objects.filter(payload__icontains=code).exists()


def test_polled_records_of_code_messages_are_stored_masked(sandbox, settings, clock, committed):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "CODE_MESSAGE": CODE_MESSAGE}
    sandbox.report_delay = 0
    row = committed(send_code, NUMBER)
    code = re.search(r"\d{6}", sandbox.messages[0]["message"]).group()

    clock.move(1)
    assert services.sync_statuses(older_than=0) == 1
    (report,) = StatusReport.objects.filter(message=row.sms)
    assert report.payload["message"] == CODE_MASK
    assert report.payload["messageId"] == row.sms.message_id
    assert code not in str(report.payload)


def test_the_code_never_reaches_the_logs(sandboxed_codes, caplog, committed):
    caplog.set_level(logging.DEBUG)
    committed(send_code, NUMBER, client_ip="203.0.113.9")
    code = re.search(r"\d{6}", sandboxed_codes.messages[0]["message"]).group()
    check_code(NUMBER, "000000" if code != "000000" else "111111")
    check_code(NUMBER, code)

    assert caplog.records
    assert not [record for record in caplog.records if code in record.getMessage()]


def test_the_admin_never_shows_the_code(codes, client, committed):
    if Message not in admin.site._registry:
        pytest.skip("the Message admin is not registered")
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    row = committed(send_code, NUMBER)
    code = sent_code()

    for url in (
        reverse("admin:django_zhenzi_message_change", args=[row.sms.pk]),
        reverse("admin:django_zhenzi_message_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert code not in response.content.decode()
        assert CODE_MASK in response.content.decode()
