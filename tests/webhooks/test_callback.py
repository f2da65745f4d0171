"""The delivery-report callback: tokens, formats, status rules, refusals, secrets, polling."""

from __future__ import annotations

import functools
import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.core.checks import run_checks
from django.db import DatabaseError, connection
from django.db.models import Q
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_zhenzi import send_sms, services
from django_zhenzi.backends import OutgoingSms, locmem
from django_zhenzi.models import Message, StatusReport
from django_zhenzi.sandbox import Sandbox
from django_zhenzi.status import STATUS_RANK, Status
from django_zhenzi.webhooks.parser import (
    MAX_NESTING,
    MAX_REPORTS_PER_REQUEST,
    RefusedBody,
    parse_reports,
)

pytestmark = pytest.mark.django_db

TOKEN = "test-callback-token-0123456789"  # tests/settings.py
APP_SECRET = "test-secret-value"  # tests/settings.py
OLD_TOKEN = "old-callback-token-aaaaaaaaaaaa"
NEW_TOKEN = "new-callback-token-bbbbbbbbbbbb"
FORM = "application/x-www-form-urlencoded; charset=UTF-8"
JSON = "application/json;charset=UTF-8"
LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
VERIFICATION_TEXT = "【测试】您的验证码是 482913"
ANSWERS = {200, 400, 403, 405, 413}


def callback_url(token: str | None = TOKEN) -> str:
    """The callback URL for ``token``; None gives the URL without any token."""
    if token is None:
        return reverse("django_zhenzi:callback", kwargs={"token": "x"}).removesuffix("x/")
    return reverse("django_zhenzi:callback", kwargs={"token": token})


def post_form(client: Client, fields: dict, token: str | None = TOKEN):
    return client.post(callback_url(token), urlencode(fields), content_type=FORM)


def post_json(client: Client, document: object):
    return client.post(callback_url(), json.dumps(document), content_type=JSON)


def sandbox_report(message_id: str, status: str = "success", **fields: str) -> dict[str, str]:
    """A report in the sandbox's documented shape."""
    return {
        "messageId": message_id,
        "toNumber": "13800138000",
        "status": status,
        "errorCode": "DELIVRD" if status == "success" else "UNDELIV",
        "reportTime": "2025-01-02 03:04:05",
        "appName": "test-app",
        **fields,
    }


def make_message(status: str = Status.SENT, **fields) -> Message:
    moment = timezone.now()
    return Message.objects.create(
        number="13800138000",
        text=VERIFICATION_TEXT,
        status=status,
        sent_at=moment if status in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED) else None,
        **fields,
    )


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def status_changes(seen: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    return [(kw["old_status"], kw["new_status"]) for name, kw in seen if name == "status_changed"]


# --- The URL and the token ------------------------------------------------------------------------


def test_the_url_and_its_name():
    assert callback_url("abc") == "/zhenzi/callback/abc/"
    assert callback_url(None) == "/zhenzi/callback/"


@pytest.mark.parametrize(
    ("configured", "used", "accepted"),
    [
        pytest.param(TOKEN, None, False, id="missing"),
        pytest.param(TOKEN, "wrong-callback-token-ccccccccc", False, id="wrong"),
        pytest.param(TOKEN, TOKEN[:-1], False, id="prefix-of-current"),
        pytest.param(TOKEN, TOKEN + "0", False, id="current-plus-a-character"),
        pytest.param(TOKEN.upper(), TOKEN, False, id="other-case"),
        pytest.param(TOKEN, TOKEN, True, id="current"),
        pytest.param([OLD_TOKEN, NEW_TOKEN], OLD_TOKEN, True, id="old-while-rotating"),
        pytest.param([OLD_TOKEN, NEW_TOKEN], NEW_TOKEN, True, id="new-while-rotating"),
        pytest.param((OLD_TOKEN, NEW_TOKEN), NEW_TOKEN, True, id="tuple-of-tokens"),
        pytest.param([NEW_TOKEN], OLD_TOKEN, False, id="removed-after-rotation"),
        pytest.param(NEW_TOKEN, OLD_TOKEN, False, id="replaced-single-token"),
        pytest.param("", TOKEN, False, id="none-configured"),
        pytest.param("", None, False, id="none-configured-none-given"),
        pytest.param([], TOKEN, False, id="empty-list-configured"),
    ],
)
def test_token_matrix(settings, csrf_client, received_signals, configured, used, accepted):
    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_TOKEN": configured}
    message = make_message()

    response = post_form(csrf_client, sandbox_report(message.message_id), token=used)

    message.refresh_from_db()
    if accepted:
        assert response.status_code == 200
        assert response.json() == {"code": 0, "data": "success"}
        assert StatusReport.objects.get().message == message
        assert message.status == Status.DELIVERED
        assert status_changes(received_signals) == [(Status.SENT, Status.DELIVERED)]
    else:
        assert response.status_code == 403
        assert StatusReport.objects.count() == 0
        assert received_signals == []
        assert message.status == Status.SENT


@pytest.mark.parametrize("token", [TOKEN, "wrong-callback-token-ccccccccc"])
def test_url_without_trailing_slash_is_not_redirected(csrf_client, token):
    message = make_message()
    url = callback_url(token).removesuffix("/")
    response = csrf_client.post(url, urlencode(sandbox_report(message.message_id)), FORM)

    assert response.status_code == (200 if token == TOKEN else 403)
    assert StatusReport.objects.count() == (1 if token == TOKEN else 0)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_only_post(csrf_client, received_signals, method):
    message = make_message()
    response = csrf_client.generic(
        method.upper(), callback_url(), urlencode(sandbox_report(message.message_id)), FORM
    )
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert StatusReport.objects.count() == 0
    assert received_signals == []


def test_works_behind_login_required_middleware(settings, csrf_client):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    message = make_message()
    response = post_form(csrf_client, sandbox_report(message.message_id))
    assert response.status_code == 200
    assert StatusReport.objects.count() == 1


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


# --- Status rules ---------------------------------------------------------------------------------


def test_the_same_report_a_hundred_times(csrf_client, received_signals):
    message = make_message()
    body = urlencode(sandbox_report(message.message_id))

    answers = [
        csrf_client.post(callback_url(), body, content_type=FORM).status_code for _ in range(100)
    ]

    assert answers == [200] * 100
    assert StatusReport.objects.filter(message=message).count() == 100
    assert status_changes(received_signals) == [(Status.SENT, Status.DELIVERED)]


REPORT_WORDS = {Status.DELIVERED: "success", Status.UNDELIVERED: "fail"}
EVENT_SEQUENCES = [
    ("sent", "delivered"),
    ("sent", "delivered", "delivered"),
    ("sent", "delivered", "delivered", "delivered"),
    ("sent", "undelivered"),
    ("sent", "undelivered", "undelivered"),
    ("sent", "undelivered", "undelivered", "undelivered"),
    ("sent", "delivered", "undelivered"),
    ("sent", "undelivered", "delivered", "delivered"),
]
ORDERS = sorted({order for seq in EVENT_SEQUENCES for order in itertools.permutations(seq)})


_reports_during_send: list[Callable[[], None]] = []


class AnswerOvertakenBackend(locmem.SmsBackend):
    """The locmem backend, with the reports queued in ``_reports_during_send`` arriving while it
    sends: after the provider accepted the message, before the worker records the answer."""

    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        answer = super().send(sms)
        while _reports_during_send:
            _reports_during_send.pop(0)()
        return answer


@pytest.mark.parametrize("events", ORDERS, ids=["-".join(order) for order in ORDERS])
def test_every_order_of_events_ends_at_the_highest_rank(
    settings, csrf_client, received_signals, events
):
    """ "sent" is the worker recording the provider's answer; the others are reports on the
    callback, and those before "sent" overtake the answer. The first final report wins
    (delivered and undelivered share the top rank)."""
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": f"{__name__}.AnswerOvertakenBackend"}
    token = services.new_claim_token()
    created = Message.objects.create(number="13800138000", text=VERIFICATION_TEXT)
    [message] = services.claim(Q(pk=created.pk), token, limit=1)

    def report(event: str) -> None:
        word = REPORT_WORDS[event]
        assert post_form(csrf_client, sandbox_report(message.message_id, word)).status_code == 200

    sent_at = events.index("sent")
    _reports_during_send[:] = [functools.partial(report, event) for event in events[:sent_at]]
    services.send_claimed(message, token)
    assert _reports_during_send == []
    for event in events[sent_at + 1 :]:
        report(event)

    final = Message.objects.get(pk=message.pk)
    first_report = next(event for event in events if event != "sent")
    assert final.status == first_report
    assert final.sent_at is not None
    assert final.provider_answer == {"code": 0, "data": "locmem"}
    changes = [new for _, new in status_changes(received_signals)]
    assert changes == ([Status.SENT, first_report] if sent_at == 0 else [first_report])
    assert [name for name, _ in received_signals].count("message_sent") == 1
    assert StatusReport.objects.filter(message=final).count() == len(events) - 1


@pytest.mark.parametrize("start", list(Status))
@pytest.mark.parametrize("word", ["success", "fail"])
def test_a_report_moves_only_forward_from_any_status(csrf_client, received_signals, start, word):
    message = make_message(status=start)
    reported = {"success": Status.DELIVERED, "fail": Status.UNDELIVERED}[word]

    assert post_form(csrf_client, sandbox_report(message.message_id, word)).status_code == 200

    message.refresh_from_db()
    if STATUS_RANK[start] < STATUS_RANK[reported]:
        assert message.status == reported
        assert status_changes(received_signals) == [(start, reported)]
    else:
        assert message.status == start
        assert received_signals == []
    assert StatusReport.objects.count() == 1


def post_from_threads(url: str, bodies: list[bytes]) -> list[int]:
    """POST each body from its own thread and client, all released at once."""
    barrier = threading.Barrier(len(bodies))
    answers: list[int] = [0] * len(bodies)

    def post(index: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=30)
            answers[index] = client.post(url, bodies[index], content_type=FORM).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return answers


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "words",
    [["success"] * 10, ["success", "DELIVRD"] * 5, ["success", "fail"] * 5],
    ids=["same", "synonyms", "contradicting"],
)
def test_concurrent_reports_for_one_message(received_signals, words):
    message = make_message()
    bodies = [urlencode(sandbox_report(message.message_id, word)).encode() for word in words]

    answers = post_from_threads(callback_url(), bodies)

    assert answers == [200] * 10
    assert StatusReport.objects.filter(message=message).count() == 10
    message.refresh_from_db()
    changes = status_changes(received_signals)
    assert len(changes) == 1
    assert changes[0] == (Status.SENT, message.status)
    assert message.status in {Status.DELIVERED, Status.UNDELIVERED}
    if "fail" not in words:
        assert message.status == Status.DELIVERED


def test_at_most_four_queries_per_report(csrf_client):
    messages = [make_message() for _ in range(20)]
    batch = [sandbox_report(m.message_id) for m in messages] + [sandbox_report("orphan")]
    with CaptureQueriesContext(connection) as captured:
        assert post_json(csrf_client, batch).status_code == 200
    # The test runs inside a transaction, so each report's atomic block adds savepoints.
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 4 * len(batch)
    assert StatusReport.objects.count() == len(batch)


# --- Failures while storing -----------------------------------------------------------------------


def test_a_failure_while_storing_answers_500_and_keeps_nothing_half_done(
    csrf_client, caplog, monkeypatch
):
    message = make_message()

    def explode(*args, **kwargs):
        raise DatabaseError("the status update failed")

    with monkeypatch.context() as patched:
        patched.setattr(services.reports, "advance_many", explode)  # after the rows are written
        with caplog.at_level(logging.DEBUG):
            response = post_form(csrf_client, sandbox_report(message.message_id))

    assert response.status_code == 500
    assert TOKEN not in response.content.decode()
    assert StatusReport.objects.count() == 0
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert "delivery-report request failed" in caplog.text
    assert TOKEN not in caplog.text

    assert post_form(csrf_client, sandbox_report(message.message_id)).status_code == 200
    assert StatusReport.objects.count() == 1


# --- Secrets --------------------------------------------------------------------------------------


def leaky_report(message_id: str) -> dict[str, object]:
    return {
        **sandbox_report(message_id),
        "appId": "test-app",
        "appSecret": APP_SECRET,
        "app_secret": APP_SECRET,
        "token": TOKEN,
        "secret": "anything",
        "access_token": "anything",
        "callbackUrl": f"https://example.com/zhenzi/callback/{TOKEN}/",
        "note": f"echo {APP_SECRET} echo",
        "message": VERIFICATION_TEXT,
        "nested": {"Token": TOKEN, "list": [f"x{TOKEN}x", {"password": "p"}]},
    }


def test_secrets_never_reach_stored_payloads(csrf_client):
    message = make_message()
    as_form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in leaky_report("f").items()}
    for response in (
        post_json(csrf_client, leaky_report(message.message_id)),
        post_json(csrf_client, [leaky_report(message.message_id)]),
        post_form(csrf_client, {**as_form, "messageId": message.message_id}),
        post_form(csrf_client, {"sms_status": json.dumps([leaky_report(message.message_id)])}),
    ):
        assert response.status_code == 200

    assert StatusReport.objects.count() == 4
    for report in StatusReport.objects.all():
        stored = json.dumps(report.payload, ensure_ascii=False)
        for secret in (TOKEN, APP_SECRET, "482913"):
            assert secret not in stored
        assert {"appId", "appSecret", "app_secret", "token", "secret", "access_token"}.isdisjoint(
            report.payload
        )
        assert "message" not in report.payload
        assert report.payload["messageId"] == message.message_id
        assert report.payload["status"] == "success"


@pytest.mark.parametrize("debug", [False, True])
def test_secrets_never_reach_logs_or_answers(settings, csrf_client, caplog, debug):
    settings.DEBUG = debug
    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_MAX_BODY": 4096}
    message = make_message()
    good = urlencode(leaky_report(message.message_id)).encode()
    requests_to_make = [
        ("post", TOKEN, good, FORM),
        ("post", TOKEN, good[:-3] + b"%FF", FORM),
        ("post", TOKEN, b"{" + good, JSON),
        ("post", TOKEN, b"x" * 5000, FORM),
        ("GET", TOKEN, b"", FORM),
        ("post", TOKEN[:-1], good, FORM),
        ("post", TOKEN + APP_SECRET, good, FORM),
    ]
    with caplog.at_level(logging.DEBUG):
        answers = [
            csrf_client.generic(method.upper(), callback_url(token), body, content_type)
            for method, token, body, content_type in requests_to_make
        ]

    assert [a.status_code for a in answers] == [200, 400, 400, 413, 405, 403, 403]
    for answer in answers:
        assert TOKEN[:-1] not in answer.content.decode()
        assert APP_SECRET not in answer.content.decode()
    assert TOKEN[:-1] not in caplog.text
    assert APP_SECRET not in caplog.text
    assert "482913" not in caplog.text
    assert "callback token is wrong or missing" in caplog.text


# --- Malformed input, generated -------------------------------------------------------------------

FIELD_NAMES = [
    "messageId",
    "message_id",
    "msgId",
    "sid",
    "smsMsgId",
    "toNumber",
    "mobile",
    "status",
    "report_status",
    "status_code",
    "errorCode",
    "sms_status",
    "appSecret",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "application/json; charset=nonsense",
    "application/json; charset=rot13",
    FORM,
    "application/x-www-form-urlencoded; charset=gbk",
    "multipart/form-data; boundary=BoUnDaRy",
    "multipart/form-data",
    "text/plain",
    "text/xml",
    "application/octet-stream",
    "",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
form_values = (
    st.text(max_size=30)
    | json_values.map(json.dumps)
    | st.sampled_from(["success", "fail", "DELIVRD", "0", "abc", ""])
)
report_like = st.builds(
    lambda name, value, extra: {**extra, name: value},
    st.sampled_from(["messageId", "message_id", "msgId", "sid", "smsMsgId"]),
    st.just("abc") | st.text(min_size=1, max_size=70) | st.integers() | json_values,
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), json_values, max_size=5),
)
report_bodies = st.one_of(
    report_like.map(lambda report: json.dumps(report).encode()),
    st.lists(report_like, max_size=5).map(lambda reports: json.dumps(reports).encode()),
    report_like.map(
        lambda report: urlencode(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in report.items()}
        ).encode()
    ),
    st.lists(report_like, max_size=3).map(
        lambda reports: urlencode({"sms_status": json.dumps(reports)}).encode()
    ),
)
bodies = st.one_of(
    report_bodies,
    st.binary(max_size=400),
    json_values.map(lambda value: json.dumps(value).encode()),
    json_values.map(
        lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ),
    st.dictionaries(
        st.sampled_from(FIELD_NAMES) | st.text(max_size=8), form_values, max_size=6
    ).map(lambda fields: urlencode(fields).encode()),
    st.builds(
        lambda name, value: (
            f'--BoUnDaRy\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            "--BoUnDaRy--\r\n"
        ).encode("utf-8", "surrogatepass"),
        st.sampled_from(FIELD_NAMES) | st.text(max_size=8),
        form_values,
    ),
    st.integers(4097, 20_000).map(lambda size: b"[" * size),
)
methods = st.sampled_from(["POST"] * 6 + ["GET", "PUT", "PATCH", "DELETE", "HEAD"])
tokens = st.sampled_from([TOKEN] * 6 + [None, "wrong-callback-token-ccccccccc", "%00"])


@pytest.mark.slow
@hypothesis_settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=methods, token=tokens, content_type=st.sampled_from(CONTENT_TYPES), body=bodies)
def test_generated_requests_never_fail_with_500(method, token, content_type, body):
    Message.objects.get_or_create(message_id="abc", defaults={"number": "13800138000"})
    before = StatusReport.objects.count()
    with override_settings(ZHENZI={"CALLBACK_TOKEN": TOKEN, "CALLBACK_MAX_BODY": 4096}):
        response = Client(enforce_csrf_checks=True).generic(
            method, callback_url(token), body, content_type
        )
    assert response.status_code in ANSWERS
    stored = StatusReport.objects.count() - before
    assert (stored > 0) == (response.status_code == 200)


@pytest.mark.slow
@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=report_bodies, content_type=st.sampled_from([JSON, FORM, "text/plain", ""]))
def test_generated_reports_are_stored_or_refused(body, content_type):
    """Report-shaped bodies with odd values (NUL, huge numbers, nesting, any id) on the path
    that stores them."""
    Message.objects.get_or_create(message_id="abc", defaults={"number": "13800138000"})
    before = StatusReport.objects.count()
    response = Client().generic("POST", callback_url(), body, content_type)
    assert response.status_code in {200, 400, 413}
    stored = StatusReport.objects.count() - before
    assert (stored > 0) == (response.status_code == 200)


@hypothesis_settings(max_examples=300, deadline=None)
@given(document=json_values)
def test_parser_never_leaks_a_secret(document):
    """Whatever the body, the secret never comes back out of the parser."""
    secret = "s3cr3t-value-0123456789"
    wrapped = {"messageId": "a", "x": document, "y": [secret, {"k": f"..{secret}.."}]}
    as_json = json.dumps(wrapped).encode()
    as_form_field = urlencode({"sms_status": json.dumps([wrapped])}).encode()
    for body in (as_json, as_form_field):
        try:
            parsed = parse_reports(body, secrets=[secret])
        except RefusedBody:  # nested too deeply: refused, so nothing to leak
            continue
        assert secret not in json.dumps([r.payload for r in parsed.reports], ensure_ascii=False)


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
