"""Secrets never reach stored payloads, logs or answers; generated requests never fail with 500."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest
from django.test import Client, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_zhenzi.models import Message, StatusReport
from django_zhenzi.webhooks.parser import (
    RefusedBody,
    parse_reports,
)
from tests.webhooks.callback_requests import (
    ANSWERS,
    APP_SECRET,
    FORM,
    JSON,
    TOKEN,
    VERIFICATION_TEXT,
    callback_url,
    make_message,
    post_form,
    post_json,
    sandbox_report,
)

pytestmark = pytest.mark.django_db


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
