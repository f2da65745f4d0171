"""What the callback reads: the report formats, bodies it refuses, and orphan reports."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from django_zhenzi import services
from django_zhenzi.models import Message, StatusReport
from django_zhenzi.status import Status
from django_zhenzi.webhooks.parser import (
    MAX_NESTING,
    MAX_REPORTS_PER_REQUEST,
    parse_reports,
)
from tests.webhooks.callback_requests import (
    FORM,
    JSON,
    callback_url,
    make_message,
    post_form,
    post_json,
    sandbox_report,
    status_changes,
)

pytestmark = pytest.mark.django_db


# --- Formats --------------------------------------------------------------------------------------


def yunpian_batch(ids: list[str]) -> list[dict[str, str]]:
    return [
        {
            "sid": message_id,
            "uid": "",
            "user_receive_time": "2025-01-02 03:04:05",
            "error_msg": "DELIVRD",
            "mobile": "13800138000",
            "report_status": "SUCCESS",
        }
        for message_id in ids
    ]


def format_cases(ids: list[str]) -> dict[str, tuple[str, bytes, list[tuple[str, str]]]]:
    """name: (content type, body, [(messageId, status), ...]) for two or three message ids."""
    one, two, three = ids
    sandbox_json = json.dumps(sandbox_report(one)).encode()
    gbk_form = urlencode(
        {**sandbox_report(one, "fail"), "appName": "榛子云"}, encoding="gbk"
    ).encode()
    return {
        "sandbox-form": (FORM, urlencode(sandbox_report(one)).encode(), [(one, "delivered")]),
        "sandbox-json": (JSON, sandbox_json, [(one, "delivered")]),
        "sandbox-json-array": (
            JSON,
            json.dumps([sandbox_report(one), sandbox_report(two, "fail")]).encode(),
            [(one, "delivered"), (two, "undelivered")],
        ),
        "yunpian-form-field-holding-json": (
            FORM,
            urlencode({"sms_status": json.dumps(yunpian_batch([one, two]))}).encode(),
            [(one, "delivered"), (two, "delivered")],
        ),
        "yunpian-url-encoded-twice": (
            FORM,
            urlencode({"sms_status": quote(json.dumps(yunpian_batch([three])))}).encode(),
            [(three, "delivered")],
        ),
        "tencent-json-array": (
            "application/json",
            json.dumps(
                [
                    {
                        "user_receive_time": "2025-01-02 03:04:05",
                        "nationcode": "86",
                        "mobile": "13800138004",
                        "report_status": "FAIL",
                        "errmsg": "UNDELIV",
                        "description": "用户短信接收失败",
                        "sid": one,
                    }
                ]
            ).encode(),
            [(one, "undelivered")],
        ),
        "huawei-form": (
            "application/x-www-form-urlencoded",
            urlencode({"smsMsgId": two, "status": "DELIVRD", "orgCode": "000000"}).encode(),
            [(two, "delivered")],
        ),
        "status-code-zero": (
            JSON,
            json.dumps({"message_id": three, "status_code": "0", "phone": "13800138000"}).encode(),
            [(three, "delivered")],
        ),
        "wrapped-in-an-object": (
            JSON,
            json.dumps({"code": 0, "data": [sandbox_report(one), sandbox_report(two)]}).encode(),
            [(one, "delivered"), (two, "delivered")],
        ),
        "json-as-text-plain": ("text/plain", sandbox_json, [(one, "delivered")]),
        "json-without-content-type": ("", sandbox_json, [(one, "delivered")]),
        "json-with-byte-order-mark": (JSON, b"\xef\xbb\xbf" + sandbox_json, [(one, "delivered")]),
        "gbk-form": (
            "application/x-www-form-urlencoded; charset=GBK",
            gbk_form,
            [(one, "undelivered")],
        ),
        "other-case-names": (
            JSON,
            json.dumps({"MessageID": two, "STATUS": "Success"}).encode(),
            [(two, "delivered")],
        ),
        "numeric-message-id": (
            JSON,
            b'{"msgId": 12345, "status": "fail"}',
            [("12345", "undelivered")],
        ),
    }


FORMAT_NAMES = list(format_cases(["a", "b", "c"]))


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_report_formats(csrf_client, received_signals, name):
    messages = [make_message() for _ in range(3)] + [make_message(message_id="12345")]
    content_type, body, expected = format_cases([m.message_id for m in messages[:3]])[name]

    response = csrf_client.generic("POST", callback_url(), body, content_type)

    assert response.status_code == 200, response.content
    assert response.json() == {"code": 0, "data": "success"}
    stored = StatusReport.objects.order_by("id")
    assert [(r.reported_message_id, r.status) for r in stored] == expected
    for message_id, status in expected:
        assert Message.objects.get(message_id=message_id).status == status
    assert len(status_changes(received_signals)) == len({i for i, _ in expected})
    assert all(report.message is not None and report.payload for report in stored)


def test_multipart_form_and_its_fields(csrf_client):
    message = make_message()
    response = csrf_client.post(callback_url(), sandbox_report(message.message_id, "fail"))

    assert response.status_code == 200
    report = StatusReport.objects.get()
    assert (report.status, report.raw_status, report.number) == (
        "undelivered",
        "fail",
        "13800138000",
    )
    assert report.payload["errorCode"] == "UNDELIV"
    assert report.payload["reportTime"] == "2025-01-02 03:04:05"
    message.refresh_from_db()
    assert (message.status, message.provider_status) == (Status.UNDELIVERED, "fail")


def test_unknown_fields_are_ignored_and_unknown_words_kept_raw(csrf_client, received_signals):
    message = make_message()
    report = {
        "messageId": message.message_id,
        "status": "ACCEPTD",
        "carrier": {"name": "中国移动", "codes": [1, 2.5, None, True]},
        "reportTime": 1735779845,
    }
    response = post_json(csrf_client, report)

    assert response.status_code == 200
    stored = StatusReport.objects.get()
    assert (stored.status, stored.raw_status) == ("", "ACCEPTD")
    assert stored.payload == report
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert received_signals == []


def test_a_batch_stores_the_reports_with_a_message_id(csrf_client, caplog):
    first, second = make_message(), make_message()
    batch = [
        sandbox_report(first.message_id),
        {"status": "success", "toNumber": "13800138000"},
        "not an object",
        sandbox_report(second.message_id, "fail"),
        {"messageId": "", "status": "success"},
    ]
    with caplog.at_level(logging.WARNING, logger="django_zhenzi"):
        response = post_json(csrf_client, batch)

    assert response.status_code == 200
    assert sorted(StatusReport.objects.values_list("reported_message_id", flat=True)) == sorted(
        [first.message_id, second.message_id]
    )
    assert "skipped 3 without a usable messageId" in caplog.text


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param(JSON, b'{"messageId": "abc", ', id="bad-json"),
        pytest.param(JSON, b'{"messageId": "\xff\xfe"}', id="json-not-utf8"),
        pytest.param(FORM, b"messageId=abc&status=%FF%FE", id="form-escape-not-utf8"),
        pytest.param("text/plain", b"\xc3\x28", id="text-not-utf8"),
        pytest.param(FORM, b"status=success&toNumber=13800138000", id="no-message-id"),
        pytest.param(FORM, b"", id="empty-form"),
        pytest.param(JSON, b"", id="empty-json"),
        pytest.param(JSON, b"[]", id="empty-batch"),
        pytest.param(JSON, b'[{"status": "success"}, {"toNumber": "1"}]', id="batch-no-ids"),
        pytest.param(JSON, b'{"messageId": "  "}', id="blank-id"),
        pytest.param(JSON, b'{"messageId": {"id": "abc"}}', id="object-id"),
        pytest.param(JSON, b'{"messageId": true}', id="boolean-id"),
        pytest.param(JSON, json.dumps({"messageId": "x" * 65}).encode(), id="id-too-long"),
        pytest.param(JSON, b'"a string"', id="json-string"),
        pytest.param(JSON, b"[" * 100_000, id="brackets"),
        pytest.param(
            JSON,
            json.dumps({"messageId": "abc", "x": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}).encode(),
            id="too-deep",
        ),
        pytest.param("multipart/form-data; boundary=zz", b"messageId=abc", id="bad-multipart"),
        pytest.param("multipart/form-data", b"--zz\r\n\r\n--zz--", id="multipart-no-boundary"),
        pytest.param("application/json; charset=utf-16", b'{"messageId": "abc"}', id="bad-charset"),
        pytest.param("application/json; charset=hex", b'{"messageId": "abc"}', id="binary-codec"),
    ],
)
def test_malformed_bodies_are_refused(csrf_client, received_signals, content_type, body):
    make_message(message_id="abc")
    response = csrf_client.generic("POST", callback_url(), body, content_type)

    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert StatusReport.objects.count() == 0
    assert received_signals == []


def test_nesting_limit_is_what_the_constant_says():
    nested: object = "deep"
    for _ in range(MAX_NESTING - 1):
        nested = [nested]
    assert parse_reports(json.dumps({"messageId": "a", "x": nested}).encode()).reports
    with pytest.raises(ValueError, match="nests too deeply"):
        parse_reports(json.dumps({"messageId": "a", "x": [nested]}).encode())


def test_body_size_limit(settings, csrf_client):
    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_MAX_BODY": 1024}
    message = make_message()
    fields = sandbox_report(message.message_id)
    padding = 1024 - len(urlencode({**fields, "pad": ""}))
    exact = urlencode({**fields, "pad": "x" * padding}).encode()
    assert len(exact) == 1024

    too_large = csrf_client.post(callback_url(), exact + b"x", content_type=FORM)
    assert too_large.status_code == 413
    assert StatusReport.objects.count() == 0

    assert csrf_client.post(callback_url(), exact, content_type=FORM).status_code == 200
    assert StatusReport.objects.count() == 1


def test_declared_length_over_the_limit_is_refused_unread(settings, csrf_client):
    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_MAX_BODY": 1024}
    message = make_message()
    body = urlencode(sandbox_report(message.message_id)).encode()
    response = csrf_client.post(callback_url(), body, content_type=FORM, CONTENT_LENGTH="1000000")
    assert response.status_code == 413
    assert StatusReport.objects.count() == 0


def test_too_many_reports_in_one_request(csrf_client):
    batch = [{"messageId": str(n)} for n in range(MAX_REPORTS_PER_REQUEST + 1)]
    response = post_json(csrf_client, batch)
    assert response.status_code == 413
    assert StatusReport.objects.count() == 0
    assert post_json(csrf_client, batch[:-1]).status_code == 200
    assert StatusReport.objects.count() == MAX_REPORTS_PER_REQUEST


@pytest.mark.parametrize(("value", "error"), [(0, "E008"), (-1, "E008"), ("1MB", "E003")])
def test_callback_max_body_is_checked(settings, value, error):
    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_MAX_BODY": value}
    found = [m.id for m in run_checks(tags=["django_zhenzi"]) if "CALLBACK_MAX_BODY" in str(m.msg)]
    assert found == [f"django_zhenzi.{error}"]


# --- Orphans --------------------------------------------------------------------------------------


def test_unknown_message_id_is_stored_as_an_orphan_and_linked_later(csrf_client, received_signals):
    response = post_form(csrf_client, sandbox_report("not-yet-known"))

    assert response.status_code == 200
    orphan = StatusReport.objects.get()
    assert orphan.is_orphan
    assert orphan.status == Status.DELIVERED
    assert received_signals == []

    message = make_message(message_id="not-yet-known")
    assert services.link_orphan_reports() == 1

    orphan.refresh_from_db()
    message.refresh_from_db()
    assert orphan.message == message
    assert message.status == Status.DELIVERED
    assert status_changes(received_signals) == [(Status.SENT, Status.DELIVERED)]
    assert services.link_orphan_reports() == 0


def test_orphans_of_other_apps_do_not_block_linking():
    """Reports nobody will ever match must not hide newer ones that can be linked."""
    old = timezone.now() - timedelta(days=1)
    StatusReport.objects.bulk_create(
        StatusReport(reported_message_id=f"elsewhere-{n}", status="delivered", received_at=old)
        for n in range(1001)
    )
    services.apply_report(services.ReportData("ours", "success"))
    message = make_message(message_id="ours")

    assert services.link_orphan_reports() == 1
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
