"""The sandbox delivers status reports to the callback URL, with retries."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from tests.sandbox.clients import (
    APP_ID,
    APP_SECRET,
    REPORT_FIELDS,
    SEND,
    TEXT,
)

pytestmark = pytest.mark.slow


# --- Delivery reports ---


@pytest.mark.parametrize("report_format", ["form", "json", "json-array"])
def test_reports_reach_the_callback_in_each_format(
    make_sandbox, receiver_factory, call, report_format
):
    receiver = receiver_factory()
    sandbox = make_sandbox(
        callback_url=receiver.url, report_delay=0.05, report_format=report_format
    )
    call(sandbox, SEND, number="13800138008", message=TEXT, messageId="r-ok")
    call(sandbox, SEND, number="13800138004", message=TEXT, messageId="r-bad")
    call(sandbox, SEND, number="13800138000", message=TEXT)  # no messageId: no report
    assert sandbox.wait_for_reports(2, timeout=5)
    time.sleep(0.1)

    reports = sorted(receiver.reports(), key=lambda report: report["messageId"])
    assert [
        (report["messageId"], report["toNumber"], report["status"], report["errorCode"])
        for report in reports
    ] == [
        ("r-bad", "13800138004", "fail", "UNDELIV"),
        ("r-ok", "13800138008", "success", "DELIVRD"),
    ]
    for report in reports:
        assert set(report) == REPORT_FIELDS
        assert report["appName"] == APP_ID
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", report["reportTime"])
    for content_type, body in receiver.received:
        assert APP_SECRET.encode() not in body
        if report_format == "form":
            assert content_type == "application/x-www-form-urlencoded; charset=UTF-8"
        else:
            assert content_type == "application/json;charset=UTF-8"
            assert isinstance(json.loads(body), list) == (report_format == "json-array")
    attempts = [
        (attempt["ok"], attempt["attempt"], attempt["http_status"]) for attempt in sandbox.reports
    ]
    assert attempts == [(True, 1, 200), (True, 1, 200)]


def test_a_failing_callback_is_retried(make_sandbox, receiver_factory, call):
    receiver = receiver_factory(fail_first=2)
    sandbox = make_sandbox(callback_url=receiver.url, report_delay=0, report_retry_delay=0.05)
    call(sandbox, SEND, number="13800138008", message=TEXT, messageId="retry-1")
    assert sandbox.wait_for_reports(1, timeout=5)
    assert [
        (attempt["messageId"], attempt["attempt"], attempt["ok"], attempt["http_status"])
        for attempt in sandbox.reports
    ] == [("retry-1", 1, False, 500), ("retry-1", 2, False, 500), ("retry-1", 3, True, 200)]
    assert sandbox.reports[0]["url"] == receiver.url
    assert len(receiver.received) == 3


def test_an_unreachable_callback_is_tried_four_times(make_sandbox, call):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    sandbox = make_sandbox(
        callback_url=f"http://127.0.0.1:{port}/cb", report_delay=0, report_retry_delay=0.02
    )
    call(sandbox, SEND, number="13800138008", message=TEXT, messageId="lost-1")
    deadline = time.monotonic() + 5
    while len(sandbox.reports) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    attempts = sandbox.reports
    assert [attempt["attempt"] for attempt in attempts] == [1, 2, 3, 4]
    assert all(not attempt["ok"] and attempt["http_status"] is None for attempt in attempts)
    assert all("Connection refused" in attempt["error"] for attempt in attempts)
    assert not sandbox.wait_for_reports(1, timeout=0)


# Faults
