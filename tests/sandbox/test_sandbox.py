"""The sandbox, over real HTTP: rules, error codes, reports, faults, control endpoints and CLI."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_zhenzi import send_sms
from django_zhenzi.management.commands.zhenzi_sandbox import (
    Command,
    api_url_warning,
    callback_url_from_settings,
    defaults_from_settings,
)
from django_zhenzi.models import Status
from django_zhenzi.sandbox import FAULT_KINDS, Sandbox, add_arguments, sandbox_from_options
from django_zhenzi.sandbox.cli import main
from tests.paths import REPO

#: Every test here starts a sandbox server or a process: the full suite only.
pytestmark = pytest.mark.slow

APP_ID = "test-app"
APP_SECRET = "test-secret-value"
CREDENTIALS = {"appId": APP_ID, "appSecret": APP_SECRET}
SEND = "/sms/send.do"
TEMPLATE_SEND = "/sms/v2/send.do"
BALANCE = "/account/balance.do"
FIND = "/smslog/findSmsByMessageId.do"
API_PATHS = (SEND, TEMPLATE_SEND, BALANCE, FIND)
TEXT = "【测试】您的验证码是4821，5分钟内有效。"

CHINA = timezone(timedelta(hours=8))
REPORT_FIELDS = {"messageId", "toNumber", "status", "errorCode", "reportTime", "appName"}
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def official_post(url: str, fields: dict[str, str]) -> Any:
    """POST the way the provider's official Python client does, and decode the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 (a local http:// URL)
        url,
        data=urlencode(fields).encode("utf-8"),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    with NO_PROXY.open(request, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
        return json.loads(response.read().decode("utf-8"))


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        opened.trust_env = False
        yield opened


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with the test credentials and any other options; all stopped afterwards."""
    started: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        sandbox = Sandbox(port=0, app_id=APP_ID, app_secret=APP_SECRET, **options).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def call(session: requests.Session) -> Callable[..., Any]:
    """POST form fields to an API path (credentials included unless given) and decode the JSON."""

    def call(sandbox: Sandbox, path: str, **fields: str) -> Any:
        response = session.post(sandbox.url + path, data={**CREDENTIALS, **fields}, timeout=5)
        assert response.status_code == 200
        return response.json()

    return call


class Receiver:
    """A callback endpoint recording every POST; answers 500 to the first ``fail_first`` ones."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers["Content-Type"], body))
                failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/zhenzi/callback/token/"

    def reports(self) -> list[dict[str, str]]:
        """Every received report, decoded from its format."""
        decoded = []
        for content_type, body in self.received:
            if content_type.startswith("application/x-www-form-urlencoded"):
                fields = parse_qs(body.decode("ascii"), strict_parsing=True)
                decoded.append({name: values[0] for name, values in fields.items()})
            else:
                payload = json.loads(body.decode("utf-8"))
                decoded.extend(payload if isinstance(payload, list) else [payload])
        return decoded


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    receivers: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        receiver = Receiver(fail_first)
        receiver.thread.start()
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.server.shutdown()
        receiver.server.server_close()


def address(sandbox: Sandbox) -> tuple[str, int]:
    parts = urlsplit(sandbox.url)
    return parts.hostname, parts.port


def raw_request(sandbox: Sandbox, method: str, path: str, body: bytes = b"", **headers: str):
    """One request on a fresh http.client connection: (status, headers, body)."""
    connection = HTTPConnection(*address(sandbox), timeout=5)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


# The four endpoints, the way the official client calls them


def test_send_text_like_the_official_client(sandbox):
    fields = {**CREDENTIALS, "number": "13800138000", "message": TEXT, "messageId": "m-1"}
    fields["clientIp"] = "203.0.113.9"
    assert official_post(sandbox.url + SEND, fields) == {"code": 0, "data": "发送成功"}
    (message,) = sandbox.messages
    assert message == {
        "messageId": "m-1",
        "number": "13800138000",
        "message": TEXT,
        "templateId": None,
        "templateParams": None,
        "clientIp": "203.0.113.9",
        "cost": 1,
        "createTime": message["createTime"],
        "status": "sending",
    }
    assert sandbox.message("m-1") == message
    assert sandbox.balance == 9999
    assert (sandbox.request_count("m-1"), sandbox.accepted_count("m-1")) == (1, 1)
    assert (sandbox.request_count("other"), sandbox.accepted_count("other")) == (0, 0)


def test_send_template_like_the_official_client(sandbox):
    fields = {**CREDENTIALS, "number": "13800138000", "templateId": "1001", "messageId": "t-1"}
    fields["templateParams"] = json.dumps(["9988", "15分钟"], ensure_ascii=False)
    assert official_post(sandbox.url + TEMPLATE_SEND, fields) == {"code": 0, "data": "发送成功"}
    message = sandbox.message("t-1")
    assert message["message"] == "【榛子沙箱】您的验证码是9988，15分钟内有效。"
    assert (message["templateId"], message["templateParams"]) == ("1001", ["9988", "15分钟"])


def test_balance_like_the_official_client(make_sandbox):
    sandbox = make_sandbox(balance=321)
    assert official_post(sandbox.url + BALANCE, CREDENTIALS) == {"code": 0, "data": 321}


def test_find_like_the_official_client_before_and_after_the_report(make_sandbox, call):
    sandbox = make_sandbox(report_delay=0.3)
    call(sandbox, SEND, number="13800138008", message=TEXT, messageId="ok-1")
    call(sandbox, SEND, number="13800138004", message=TEXT, messageId="bad-1")
    find_url = sandbox.url + FIND
    answer = official_post(find_url, {**CREDENTIALS, "messageId": "ok-1"})
    assert answer["code"] == 0
    record = answer["data"]
    assert set(record) == {"messageId", "toNumber", "message", "status", "createTime", "appName"}
    assert (record["messageId"], record["toNumber"], record["message"]) == (
        "ok-1",
        "13800138008",
        TEXT,
    )
    assert (record["status"], record["appName"]) == ("sending", APP_ID)
    created = datetime.strptime(record["createTime"], "%Y-%m-%d %H:%M:%S")
    china_now = datetime.now(CHINA).replace(tzinfo=None)
    assert abs((china_now - created).total_seconds()) < 5

    time.sleep(0.35)
    assert official_post(find_url, {**CREDENTIALS, "messageId": "ok-1"})["data"]["status"] == (
        "success"
    )
    assert official_post(find_url, {**CREDENTIALS, "messageId": "bad-1"})["data"]["status"] == (
        "fail"
    )
    assert sandbox.message("bad-1")["status"] == "fail"


def test_find_unknown_message_id_is_null(sandbox, call):
    assert call(sandbox, FIND, messageId="never-sent") == {"code": 0, "data": None}
    assert call(sandbox, FIND, messageId="") == {"code": 100, "data": "参数格式错误"}


# Credentials and app checks, in the provider's order


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"appSecret": APP_SECRET}, {"code": 100, "data": "参数格式错误"}),
        ({"appId": APP_ID, "appSecret": ""}, {"code": 100, "data": "参数格式错误"}),
        ({"appId": "nobody", "appSecret": "wrong"}, {"code": 105, "data": "appId错误或应用不存在"}),
        ({"appId": APP_ID, "appSecret": "wrong"}, {"code": 110, "data": "应用秘钥(AppSecret)错误"}),
    ],
)
def test_credentials_are_checked_on_every_endpoint(sandbox, session, path, fields, expected):
    fields = {**fields, "number": "13800138000", "message": TEXT, "messageId": "c-1"}
    assert session.post(sandbox.url + path, data=fields, timeout=5).json() == expected
    assert sandbox.messages == []


def test_disabled_app_is_106_before_the_secret_is_checked(make_sandbox, call):
    sandbox = make_sandbox(disabled=True)
    assert call(sandbox, BALANCE, appSecret="wrong") == {"code": 106, "data": "应用被禁止"}
    assert call(sandbox, BALANCE, appId="nobody")["code"] == 105


def test_ip_whitelist_checks_the_socket_address_not_client_ip(make_sandbox, call):
    blocked = make_sandbox(ip_whitelist=["10.1.2.3"])
    answer = call(blocked, SEND, number="13800138000", message=TEXT, clientIp="10.1.2.3")
    assert answer == {"code": 107, "data": "ip错误"}
    assert call(blocked, BALANCE, appSecret="wrong")["code"] == 107
    allowed = make_sandbox(ip_whitelist=["127.0.0.1"])
    assert call(allowed, SEND, number="13800138000", message=TEXT)["code"] == 0


# Parameters


@pytest.mark.parametrize(
    "number",
    ["", "1380013800", "138001380001", "12800138000", "23800138000", "13800138000,13900139000",
     "+8613800138000", "１３８００１３８０００"],
)  # fmt: skip
def test_number_must_be_one_mainland_mobile_number(sandbox, call, number):
    assert call(sandbox, SEND, number=number, message=TEXT) == {"code": 100, "data": "参数格式错误"}


def test_message_must_not_be_empty_nor_over_1000_characters(sandbox, call):
    assert call(sandbox, SEND, number="13800138000", message="")["code"] == 100
    too_long = call(sandbox, SEND, number="13800138000", message="短" * 1001)
    assert too_long == {"code": 101, "data": "短信内容超过1000字"}
    assert call(sandbox, SEND, number="13800138000", message="短" * 1000)["code"] == 0
    assert sandbox.messages[0]["cost"] == 15


def test_a_message_id_is_used_once_by_an_accepted_message(sandbox, call):
    assert call(sandbox, SEND, number="13800138000", message=TEXT, messageId="d-1")["code"] == 0
    again = call(sandbox, SEND, number="13800138000", message=TEXT, messageId="d-1")
    assert again == {"code": 100, "data": "messageId重复"}
    assert (sandbox.request_count("d-1"), sandbox.accepted_count("d-1")) == (2, 1)
    assert sandbox.repeat_count("d-1") == 1
    assert sandbox.balance == 9999
    # a rejected request does not use up its messageId
    assert call(sandbox, SEND, number="123", message=TEXT, messageId="d-2")["code"] == 100
    assert call(sandbox, SEND, number="13800138000", message=TEXT, messageId="d-2")["code"] == 0


@pytest.mark.parametrize(("length", "cost"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)])
def test_cost_is_the_number_of_segments(sandbox, call, length, cost):
    assert call(sandbox, SEND, number="13800138000", message="文" * length)["code"] == 0
    assert sandbox.messages[0]["cost"] == cost
    assert call(sandbox, BALANCE) == {"code": 0, "data": 10000 - cost}


def test_balance_lower_than_the_cost_is_108(make_sandbox, call):
    sandbox = make_sandbox(balance=3)
    assert call(sandbox, SEND, number="13800138000", message="文" * 71)["code"] == 0
    assert call(sandbox, SEND, number="13800138000", message="文" * 71) == {
        "code": 108,
        "data": "短信余额不足",
    }
    assert call(sandbox, SEND, number="13800138000", message=TEXT)["code"] == 0
    assert call(sandbox, BALANCE) == {"code": 0, "data": 0}
    assert call(sandbox, SEND, number="13800138000", message=TEXT)["code"] == 108
    sandbox.balance = 1
    assert call(sandbox, SEND, number="13800138000", message=TEXT)["code"] == 0
    assert len(sandbox.messages) == 3


def test_daily_cap_counts_per_number(make_sandbox, call):
    sandbox = make_sandbox(daily_cap=2)
    for _ in range(2):
        assert call(sandbox, SEND, number="13800138000", message=TEXT)["code"] == 0
    assert call(sandbox, SEND, number="13800138000", message=TEXT) == {
        "code": 109,
        "data": "今日发送超过限额",
    }
    assert call(sandbox, SEND, number="13900139000", message=TEXT)["code"] == 0
    assert sandbox.balance == 10000 - 3


@pytest.mark.parametrize(
    ("template_id", "params", "code"),
    [
        ("9999", '["1"]', 117),
        ("", '["1", "2"]', 100),
        ("1001", '["9988"]', 100),
        ("1001", '["9988", "15分钟", "x"]', 100),
        ("1001", '["9988", 15]', 100),
        ("1001", '{"1": "9988"}', 100),
        ("1001", "9988,15分钟", 100),
        ("1002", '["SF123"]', 0),
    ],
)
def test_template_id_and_params(sandbox, call, template_id, params, code):
    answer = call(
        sandbox, TEMPLATE_SEND, number="13800138000", templateId=template_id, templateParams=params
    )
    assert answer["code"] == code
    if code == 117:
        assert answer["data"] == "templateId错误或模板未审核"
    assert len(sandbox.messages) == (1 if code == 0 else 0)


def test_custom_templates(make_sandbox, call):
    sandbox = make_sandbox(templates={"7": "【店】{2}到了{1}"})
    answer = call(
        sandbox,
        TEMPLATE_SEND,
        number="13800138000",
        templateId="7",
        templateParams='["a\\\\1", "b"]',
    )
    assert answer["code"] == 0
    assert sandbox.messages[0]["message"] == "【店】b到了a\\1"
    assert call(sandbox, TEMPLATE_SEND, number="13800138000", templateId="1001")["code"] == 117


def test_missing_content_type_is_tolerated(sandbox):
    body = urlencode({**CREDENTIALS}).encode()
    status, headers, answer = raw_request(sandbox, "POST", BALANCE, body)
    assert (status, json.loads(answer)) == (200, {"code": 0, "data": 10000})
    assert headers["Content-Length"] == str(len(answer))


# Status reports


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


def test_timeout_fault_holds_the_request_then_closes_without_processing(make_sandbox, session):
    sandbox = make_sandbox(hang_seconds=0.4)
    sandbox.fail_next("timeout", 2)
    fields = {**CREDENTIALS, "number": "13800138000", "message": TEXT, "messageId": "h-1"}
    with pytest.raises(requests.ReadTimeout):
        session.post(sandbox.url + SEND, data=fields, timeout=0.1)

    body = urlencode(fields).encode()
    request = f"POST {SEND} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(address(sandbox), timeout=5) as raw:
        started = time.monotonic()
        raw.sendall(request + body)
        assert raw.recv(100) == b""
        assert 0.35 < time.monotonic() - started < 3
    assert (sandbox.request_count("h-1"), sandbox.accepted_count("h-1")) == (2, 0)
    assert sandbox.balance == 10000
    assert session.post(sandbox.url + SEND, data=fields, timeout=5).json()["code"] == 0


def test_cut_fault_processes_the_message_then_drops_the_connection(sandbox, session):
    sandbox.fail_next("cut")
    fields = {**CREDENTIALS, "number": "13800138000", "message": TEXT, "messageId": "cut-1"}
    with pytest.raises(requests.ConnectionError):
        session.post(sandbox.url + SEND, data=fields, timeout=5)
    assert sandbox.accepted_count("cut-1") == 1
    assert sandbox.message("cut-1")["number"] == "13800138000"
    assert sandbox.balance == 9999
    assert (
        session.post(sandbox.url + SEND, data=fields, timeout=5).json()["data"] == "messageId重复"
    )


def find(sandbox: Sandbox, session: requests.Session, message_id: str) -> Any:
    fields = {**CREDENTIALS, "messageId": message_id}
    return session.post(sandbox.url + FIND, data=fields, timeout=5).json()


def test_late_fault_times_out_but_records_the_message_late_seconds_after(make_sandbox, session):
    sandbox = make_sandbox(hang_seconds=0.3, late_seconds=1.0)
    sandbox.fail_next("late")
    fields = {**CREDENTIALS, "number": "13800138000", "message": TEXT, "messageId": "late-1"}
    arrived = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        session.post(sandbox.url + SEND, data=fields, timeout=0.1)

    # Pending: charged, the messageId taken, but nothing to find yet.
    assert find(sandbox, session, "late-1") == {"code": 0, "data": None}
    assert (sandbox.request_count("late-1"), sandbox.accepted_count("late-1")) == (1, 0)
    assert (sandbox.message("late-1"), sandbox.messages) == (None, [])
    assert sandbox.balance == 9999
    state = sandbox.state()
    assert (state["message_count"], state["late_pending"]) == (0, 1)
    assert sandbox.counts() == {
        "request_counts": {"late-1": 1},
        "repeat_counts": {},
        "accepted": [],
    }
    # A repeat meanwhile is refused like any repeat, and charged nothing.
    repeat = session.post(sandbox.url + SEND, data=fields, timeout=5).json()
    assert repeat == {"code": 100, "data": "messageId重复"}
    assert time.monotonic() - arrived < 1.0, "the checks above came too late to mean anything"

    time.sleep(max(0.0, arrived + 1.05 - time.monotonic()))
    record = find(sandbox, session, "late-1")["data"]
    assert (record["messageId"], record["toNumber"], record["status"]) == (
        "late-1",
        "13800138000",
        "sending",
    )
    created = datetime.strptime(record["createTime"], "%Y-%m-%d %H:%M:%S")
    assert abs((datetime.now(CHINA).replace(tzinfo=None) - created).total_seconds()) < 5
    assert (sandbox.request_count("late-1"), sandbox.accepted_count("late-1")) == (2, 1)
    assert sandbox.repeat_count("late-1") == 1
    assert [message["messageId"] for message in sandbox.messages] == ["late-1"]
    assert sandbox.balance == 9999
    state = sandbox.state()
    assert (state["message_count"], state["late_pending"]) == (1, 0)
    assert session.post(sandbox.url + SEND, data=fields, timeout=5).json()["code"] == 100
    assert sandbox.balance == 9999


def test_late_fault_holds_the_request_hang_seconds_then_closes(make_sandbox):
    sandbox = make_sandbox(hang_seconds=0.3, late_seconds=0)
    sandbox.fail_next("late")
    body = urlencode({**CREDENTIALS, "number": "13800138000", "message": TEXT}).encode()
    request = f"POST {SEND} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(address(sandbox), timeout=5) as raw:
        started = time.monotonic()
        raw.sendall(request.encode() + body)
        assert raw.recv(100) == b""
        assert 0.25 < time.monotonic() - started < 3
    assert len(sandbox.messages) == 1  # processed, answer dropped


def test_a_late_request_the_rules_refuse_records_nothing(make_sandbox, session):
    sandbox = make_sandbox(balance=0, hang_seconds=0.1, late_seconds=0.2)
    sandbox.fail_next("late", 2)
    fields = {**CREDENTIALS, "number": "13800138000", "message": TEXT, "messageId": "late-108"}
    with pytest.raises(requests.ReadTimeout):
        session.post(sandbox.url + SEND, data=fields, timeout=0.05)
    with pytest.raises(requests.ReadTimeout):  # "late" on a look-up is a plain timeout
        session.post(sandbox.url + FIND, data={**CREDENTIALS, "messageId": "x"}, timeout=0.05)
    time.sleep(0.3)
    assert sandbox.accepted_count("late-108") == 0
    assert sandbox.state()["late_pending"] == 0
    sandbox.balance = 1
    assert session.post(sandbox.url + SEND, data=fields, timeout=5).json()["code"] == 0
    assert sandbox.accepted_count("late-108") == 1


def test_a_late_message_is_reported_after_its_record(make_sandbox, receiver_factory, session):
    receiver = receiver_factory()
    sandbox = make_sandbox(
        callback_url=receiver.url, report_delay=0.1, hang_seconds=0.1, late_seconds=0.5
    )
    sandbox.fail_next("late")
    fields = {**CREDENTIALS, "number": "13800138008", "message": TEXT, "messageId": "late-r"}
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        session.post(sandbox.url + SEND, data=fields, timeout=0.05)
    assert sandbox.wait_for_reports(1, timeout=5)
    assert time.monotonic() - started >= 0.6
    (report,) = receiver.reports()
    assert (report["messageId"], report["status"]) == ("late-r", "success")


def test_late_fault_and_timings_over_the_control_api(make_sandbox, session):
    sandbox = make_sandbox()
    control = sandbox.url + "/_sandbox/faults"
    answer = session.post(
        control, json={"late_seconds": 0.2, "hang_seconds": 0.1, "next": ["late"]}, timeout=5
    ).json()
    assert answer == {
        "latency": 0.0,
        "rates": {},
        "next": [["late", 1]],
        "hang_seconds": 0.1,
        "late_seconds": 0.2,
    }
    refused = session.post(control, json={"late_seconds": -1, "rates": {"late": 1}}, timeout=5)
    assert refused.status_code == 400
    assert "late_seconds must be a number >= 0" in refused.json()["error"]
    assert (sandbox.late_seconds, sandbox.faults["rates"]) == (0.2, {})
    fields = {**CREDENTIALS, "number": "13800138000", "message": TEXT, "messageId": "late-c"}
    with pytest.raises(requests.ReadTimeout):
        session.post(sandbox.url + SEND, data=fields, timeout=0.05)
    assert sandbox.accepted_count("late-c") == 0
    time.sleep(0.25)
    assert sandbox.accepted_count("late-c") == 1


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("http500", 500, "text/html;charset=UTF-8"),
        ("non_json", 200, "text/html;charset=UTF-8"),
        ("code1000", 200, "application/json;charset=UTF-8"),
    ],
)
def test_answer_faults_leave_the_message_unprocessed(sandbox, session, kind, status, content_type):
    sandbox.fail_next(kind)
    fields = {**CREDENTIALS, "number": "13800138000", "message": TEXT, "messageId": "f-1"}
    response = session.post(sandbox.url + SEND, data=fields, timeout=5)
    assert (response.status_code, response.headers["Content-Type"]) == (status, content_type)
    if kind == "code1000":
        assert response.json() == {"code": 1000, "data": "系统未知错误"}
    else:
        assert response.text.startswith("<html>")
    assert (sandbox.request_count("f-1"), sandbox.accepted_count("f-1")) == (1, 0)
    assert sandbox.balance == 10000
    assert session.post(sandbox.url + SEND, data=fields, timeout=5).json()["code"] == 0


def test_one_shot_faults_queue_in_order_and_skip_control_paths(sandbox, session):
    sandbox.fail_next("http500", 2)
    sandbox.fail_next("code1000")
    assert session.get(sandbox.url + "/_sandbox/state", timeout=5).status_code == 200
    assert sandbox.faults["next"] == [["http500", 2], ["code1000", 1]]
    answers = [session.post(sandbox.url + BALANCE, data=CREDENTIALS, timeout=5) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [500, 500, 200, 200]
    assert [answer.json()["code"] for answer in answers[2:]] == [1000, 0]
    assert sandbox.requests_total == 4
    assert sandbox.requests_by_endpoint[BALANCE] == 4


def fault_sequence(sandbox: Sandbox, session: requests.Session, count: int) -> list[str]:
    outcomes = []
    for _ in range(count):
        response = session.post(sandbox.url + BALANCE, data=CREDENTIALS, timeout=5)
        outcomes.append("http500" if response.status_code == 500 else str(response.json()["code"]))
    return outcomes


def test_fault_rates_with_a_seed_are_proportional_and_repeatable(make_sandbox, session):
    rates = {"http500": 0.2, "code1000": 0.1}
    first = fault_sequence(make_sandbox(fault_rates=rates, seed=7), session, 200)
    assert 25 <= first.count("http500") <= 55
    assert 8 <= first.count("1000") <= 32
    assert first.count("0") == 200 - first.count("http500") - first.count("1000")
    assert fault_sequence(make_sandbox(fault_rates=rates, seed=7), session, 200) == first


def test_latency_delays_api_answers_only(sandbox, session):
    sandbox.set_faults(latency=0.3)
    started = time.monotonic()
    assert session.post(sandbox.url + BALANCE, data=CREDENTIALS, timeout=5).json()["code"] == 0
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert (
        session.get(sandbox.url + "/_sandbox/state", timeout=5).json()["faults"]["latency"] == 0.3
    )
    assert time.monotonic() - started < 0.2


# Control over HTTP


def test_control_endpoints(sandbox, session, call):
    control = sandbox.url + "/_sandbox/"
    faults = {"latency": 0, "rates": {"code1000": 1.0}, "next": [["http500", 1]]}
    response = session.post(control + "faults", json=faults, timeout=5)
    assert response.json() == {
        "latency": 0,
        "rates": {"code1000": 1.0},
        "next": [["http500", 1]],
        "hang_seconds": 30.0,
        "late_seconds": 5.0,
    }
    assert session.post(sandbox.url + BALANCE, data=CREDENTIALS, timeout=5).status_code == 500
    assert call(sandbox, BALANCE)["code"] == 1000
    bad = session.post(control + "faults", json={"rates": {"slow": 0.5}}, timeout=5)
    assert bad.status_code == 400
    assert "unknown fault kind 'slow'" in bad.json()["error"]
    assert (
        session.post(control + "faults", json={"rates": {"cut": 2}}, timeout=5).status_code == 400
    )
    assert session.post(control + "faults", json={"next": ["nope"]}, timeout=5).status_code == 400
    assert session.post(control + "faults", data=b"not json", timeout=5).status_code == 400
    assert sandbox.faults["rates"] == {"code1000": 1.0}
    session.post(control + "faults", json={"rates": {}}, timeout=5)

    assert session.post(control + "balance", json={"balance": 3}, timeout=5).json() == {
        "balance": 3
    }
    assert session.post(control + "balance", json={"balance": -1}, timeout=5).status_code == 400
    assert call(sandbox, SEND, number="13800138000", message=TEXT, messageId="c/1 x")["code"] == 0
    record = session.get(control + "messages/c%2F1%20x", timeout=5).json()
    assert (record["messageId"], record["request_count"], record["status"]) == (
        "c/1 x",
        1,
        "sending",
    )
    assert session.get(control + "messages/unknown", timeout=5).status_code == 404
    assert call(sandbox, SEND, number="13800138000", message=TEXT, messageId="c/1 x")["code"] == 100
    assert session.get(control + "counts", timeout=5).json() == {
        "request_counts": {"c/1 x": 2},
        "repeat_counts": {"c/1 x": 1},
        "accepted": ["c/1 x"],
    }
    state = session.get(control + "state", timeout=5).json()
    assert state["balance"] == 2
    assert state["message_count"] == 1
    assert state["requests_total"] == 4
    assert state["requests_by_endpoint"] == {SEND: 2, TEMPLATE_SEND: 0, BALANCE: 2, FIND: 0}
    assert state["faults"] == {"latency": 0, "rates": {}, "next": []}

    state = session.post(control + "reset", timeout=5).json()
    assert (state["balance"], state["message_count"], state["requests_total"]) == (10000, 0, 0)
    assert sandbox.messages == []
    assert (sandbox.request_count("c/1 x"), sandbox.repeat_count("c/1 x")) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", SEND, 405),
        ("PUT", BALANCE, 405),
        ("GET", FIND, 405),
        ("POST", "/sms/nope.do", 404),
        ("GET", "/", 404),
        ("POST", "/_sandbox/state", 405),
        ("GET", "/_sandbox/reset", 405),
        ("GET", "/_sandbox/nope", 404),
    ],
)
def test_wrong_method_is_405_and_unknown_path_404(sandbox, method, path, status):
    answer_status, headers, body = raw_request(sandbox, method, path)
    assert answer_status == status
    assert headers["Content-Length"] == str(len(body))
    assert sandbox.requests_total == 0


# Connections


def test_keep_alive_serves_many_requests_on_one_connection(sandbox):
    connection = HTTPConnection(*address(sandbox), timeout=5)
    body = urlencode(CREDENTIALS)
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    try:
        sockets = []
        for _ in range(5):
            connection.request("POST", BALANCE, body=body, headers=headers)
            response = connection.getresponse()
            assert json.loads(response.read()) == {"code": 0, "data": 10000}
            assert not response.will_close
            sockets.append(connection.sock)
        assert all(sock is sockets[0] for sock in sockets)
        assert len(sandbox.http_server.open_connections()) == 1
    finally:
        connection.close()


def test_nagle_is_off_on_accepted_connections(sandbox, session):
    started = time.monotonic()
    for _ in range(20):
        assert session.post(sandbox.url + BALANCE, data=CREDENTIALS, timeout=5).json()["code"] == 0
    assert time.monotonic() - started < 0.5
    (server_side,) = sandbox.http_server.open_connections()
    assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_stop_is_prompt_while_a_request_hangs(make_sandbox):
    sandbox = make_sandbox(hang_seconds=30)
    sandbox.fail_next("timeout")
    body = urlencode(CREDENTIALS).encode()
    request = f"POST {BALANCE} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(address(sandbox), timeout=5) as raw:
        raw.sendall(request + body)
        deadline = time.monotonic() + 5
        while sandbox.requests_total == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        sandbox.stop()
        assert time.monotonic() - started < 1
        assert raw.recv(100) == b""
    with pytest.raises(OSError):
        socket.create_connection(address(sandbox), timeout=1).close()


def test_verbose_logs_requests_but_never_the_secret(make_sandbox, call, capsys):
    sandbox = make_sandbox(verbose=True)
    call(sandbox, SEND, number="13800138000", message=TEXT)
    err = capsys.readouterr().err
    assert '"POST /sms/send.do" 200' in err
    assert APP_SECRET not in err


def test_quiet_by_default(sandbox, call, capsys):
    call(sandbox, BALANCE)
    raw_request(sandbox, "GET", "/nope")
    assert capsys.readouterr().err == ""


# Python API validation


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fault_rates": {"slow": 0.1}}, "unknown fault kind 'slow'"),
        ({"fault_rates": {"cut": 1.5}}, "between 0 and 1"),
        ({"fault_rates": {"cut": -0.1}}, "between 0 and 1"),
        ({"fault_rates": {"cut": 0.6, "http500": 0.6}}, "add up to more than 1"),
        ({"report_format": "xml"}, "report_format must be one of form, json, json-array"),
        ({"latency": -1}, "latency must be a number >= 0"),
        ({"hang_seconds": -1}, "hang_seconds must be a number >= 0"),
        ({"late_seconds": -1}, "late_seconds must be a number >= 0"),
        ({"late_seconds": "5"}, "late_seconds must be a number >= 0"),
        ({"report_delay": -0.5}, "report_delay must be a number >= 0"),
        ({"report_retry_delay": -1, "callback_url": "http://x/"}, "report_retry_delay must be"),
        ({"daily_cap": -1}, "daily_cap must be an integer >= 0"),
        ({"balance": -5}, "balance must be an integer >= 0"),
        ({"undeliverable_suffixes": "4a"}, "undeliverable_suffixes must be digits"),
        ({"port": 70000}, "port must be an integer in 0..65535"),
        ({"ip_whitelist": ["not-an-ip"]}, "does not appear to be an IPv4 or IPv6 address"),
        ({"ip_whitelist": "127.0.0.1"}, "not one string"),
        ({"callback_url": "ftp://example.com/"}, "callback_url must be an http(s) URL"),
        ({"templates": {"1": "{2}"}}, "placeholders must be {1}..{n}"),
        ({"app_secret": ""}, "must not be empty"),
    ],
)
def test_invalid_options_are_value_errors(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Sandbox(**options)


def test_fault_setters_validate(sandbox):
    with pytest.raises(ValueError, match="unknown fault kind 'slow'"):
        sandbox.fail_next("slow")
    with pytest.raises(ValueError, match="integer >= 1"):
        sandbox.fail_next("cut", 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        sandbox.set_faults(latency=0.5, rates={"cut": 2})
    assert sandbox.faults == {"latency": 0.0, "rates": {}, "next": []}
    sandbox.set_faults(rates={kind: 0.1 for kind in FAULT_KINDS})
    sandbox.set_faults(latency=0.01)
    assert sandbox.faults["rates"] == {kind: 0.1 for kind in FAULT_KINDS}
    with pytest.raises(ValueError, match="late_seconds must be a number >= 0"):
        sandbox.late_seconds = -1
    assert sandbox.late_seconds == 5.0
    sandbox.reset()
    assert sandbox.faults == {"latency": 0.0, "rates": {}, "next": []}


def test_a_sandbox_starts_once_and_stops_idempotently():
    sandbox = Sandbox()
    with pytest.raises(RuntimeError):
        sandbox.url  # noqa: B018
    sandbox.start()
    with pytest.raises(RuntimeError):
        sandbox.start()
    sandbox.stop()
    sandbox.stop()


# Command line and management command


def test_options_build_the_sandbox():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = vars(
        parser.parse_args(
            ["--port", "0", "--fault", "cut=0.1", "--fault", "http500=0.2", "--ip-whitelist",
             "127.0.0.1", "--daily-cap", "3", "--report-format", "json", "--disabled",
             "--fault", "late=0.05", "--late-seconds", "2.5", "--hang-seconds", "4"]
        )
    )  # fmt: skip
    sandbox = sandbox_from_options(options)
    assert sandbox.faults["rates"] == {"http500": 0.2, "cut": 0.1, "late": 0.05}
    assert (sandbox.late_seconds, sandbox.hang_seconds) == (2.5, 4)
    assert (sandbox.port, sandbox.daily_cap, sandbox.report_format) == (0, 3, "json")
    assert (sandbox.ip_whitelist, sandbox.disabled) == (frozenset({"127.0.0.1"}), True)
    assert (sandbox.app_id, sandbox.app_secret, sandbox.balance) == (
        "sandbox",
        "sandbox-secret",
        10000,
    )
    assert sandbox_from_options({}).port == 8086
    assert sandbox_from_options({}).late_seconds == 5.0


@pytest.mark.parametrize(
    "argv", [["--fault", "slow=0.1"], ["--fault", "cut"], ["--fault", "cut=2"], ["--latency", "-1"]]
)
def test_cli_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--port", "0", *argv])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def serve_in_subprocess(
    command: list[str],
    check: Callable[[str, str], None],
    expected_err: str = "",
    expected_out: str = "",
    **env: str,
) -> None:
    """Start a sandbox process, run ``check(first_line, url)``, then SIGTERM it: it exits 0 and
    wrote ``expected_err`` (a regular expression) to stderr."""
    with subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            first_line = process.stdout.readline()
            url = re.search(r"serving on (http://\S+)", first_line)
            assert url, (first_line, process.stderr.read() if process.poll() is not None else "")
            check(first_line, url.group(1))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        rest, err = process.stdout.read(), process.stderr.read()
        assert process.returncode == 0, err
        assert re.fullmatch(expected_err, err), err
        assert rest.endswith("Stop with Ctrl-C or SIGTERM.\n")
        assert expected_out in first_line + rest


def test_cli_serves_on_a_free_port_until_sigterm():
    def check(first_line: str, url: str) -> None:
        assert urlsplit(url).port not in (None, 0)
        assert "appId=cli-app  appSecret=cli-secret" in first_line
        answer = official_post(url + BALANCE, {"appId": "cli-app", "appSecret": "cli-secret"})
        assert answer == {"code": 0, "data": 10000}

    command = [sys.executable, "-m", "django_zhenzi.sandbox", "--port", "0"]
    serve_in_subprocess([*command, "--app-id", "cli-app", "--app-secret", "cli-secret"], check)


API_URL_WARNING = (
    r"ZHENZI\['API_URL'\] is http://127\.0\.0\.1:9, not this sandbox: the site sends through "
    r"that server\. Set it to http://127\.0\.0\.1:\d+ to use the sandbox\.\n"
)


def test_management_command_uses_settings_and_hides_their_secret():
    def check(first_line: str, url: str) -> None:
        assert "appId=test-app" in first_line
        assert APP_SECRET not in first_line
        assert official_post(url + BALANCE, CREDENTIALS) == {"code": 0, "data": 10000}

    command = [sys.executable, "-m", "django", "zhenzi_sandbox", "--port", "0"]
    # tests.settings' API_URL is http://127.0.0.1:9, not the port the sandbox takes: it says so.
    serve_in_subprocess(command, check, API_URL_WARNING, DJANGO_SETTINGS_MODULE="tests.settings")


@pytest.mark.django_db(transaction=True)
def test_management_command_reports_to_the_site_by_its_callback_token(live_server, settings):
    """Without --callback-url, reports go to --site-url + the callback URL of CALLBACK_TOKEN,
    and the message sent through the sandbox ends up delivered; the token is not printed."""

    def check(first_line: str, url: str) -> None:
        settings.ZHENZI = {**settings.ZHENZI, "API_URL": url}
        message = send_sms("13800138000", TEXT)
        assert message.status == Status.SENT
        deadline = time.monotonic() + 10
        while message.status == Status.SENT and time.monotonic() < deadline:
            time.sleep(0.05)
            message.refresh_from_db()
        assert message.status == Status.DELIVERED

    command = [sys.executable, "-m", "django", "zhenzi_sandbox", "--port", "0"]
    command += ["--site-url", live_server.url, "--report-delay", "0.05"]
    serve_in_subprocess(
        command,
        check,
        API_URL_WARNING,
        DJANGO_SETTINGS_MODULE="tests.settings",
        expected_out=f"to {live_server.url}/zhenzi/callback/<CALLBACK_TOKEN>/, ",
    )


def test_management_command_help_hides_the_secret():
    with override_settings(ZHENZI={"APP_ID": "help-app", "APP_SECRET": "s3cretvalue42"}):
        parser = Command().create_parser("manage.py", "zhenzi_sandbox")
        text = " ".join(parser.format_help().split())
    assert "s3cretvalue42" not in text
    assert "the appSecret clients must send (default: ZHENZI['APP_SECRET'])" in text
    assert "(default: help-app)" in text
    assert "--site-url + the callback path of ZHENZI['CALLBACK_TOKEN']" in text


def test_management_command_callback_url_comes_from_the_token():
    assert callback_url_from_settings("http://127.0.0.1:8000/") == (
        "http://127.0.0.1:8000/zhenzi/callback/test-callback-token-0123456789/",
        "",
    )
    with override_settings(ZHENZI={"CALLBACK_TOKEN": ["first-token-0123456789", "second-tok"]}):
        assert callback_url_from_settings("http://site.test:8001")[0] == (
            "http://site.test:8001/zhenzi/callback/first-token-0123456789/"
        )
    with override_settings(ZHENZI={}):
        url, problem = callback_url_from_settings("http://127.0.0.1:8000")
    assert url is None
    assert "no ZHENZI['CALLBACK_TOKEN']" in problem
    with override_settings(
        ROOT_URLCONF="django_zhenzi.verification.urls"
    ):  # a site without django_zhenzi.urls
        url, problem = callback_url_from_settings("http://127.0.0.1:8000")
    assert url is None
    assert "does not include django_zhenzi.urls" in problem


@pytest.mark.parametrize(
    ("api_url", "sandbox_url", "warns"),
    [
        ("http://127.0.0.1:8086", "http://127.0.0.1:8086", False),
        ("http://localhost:8086/", "http://127.0.0.1:8086", False),
        ("http://127.0.0.1", "http://127.0.0.1:80", False),
        ("http://127.0.0.1:8087", "http://127.0.0.1:8086", True),
        ("https://sms_developer.zhenzikj.com", "http://127.0.0.1:8086", True),
        ("http://10.0.0.5:8086", "http://127.0.0.1:8086", True),
    ],
)
def test_management_command_warns_when_api_url_is_not_the_sandbox(api_url, sandbox_url, warns):
    with override_settings(ZHENZI={"API_URL": api_url}):
        warning = api_url_warning(sandbox_url)
    assert bool(warning) is warns
    if warns:
        assert f"ZHENZI['API_URL'] is {api_url}, not this sandbox" in warning
        assert f"Set it to {sandbox_url} to use the sandbox." in warning


@pytest.mark.parametrize(
    ("zhenzi", "expected"),
    [
        (
            {"APP_ID": "a", "APP_SECRET": "s", "API_URL": "http://127.0.0.1:9100"},
            {"app_id": "a", "app_secret": "s", "host": "127.0.0.1", "port": 9100},
        ),
        ({"API_URL": "http://localhost"}, {"host": "localhost", "port": 80}),
        ({"API_URL": "http://[::1]:9000/"}, {"host": "::1", "port": 9000}),
        ({"API_URL": "http://10.0.0.5:9000"}, {}),
        ({"APP_ID": "a", "API_URL": "https://127.0.0.1:9000"}, {"app_id": "a"}),
        ({"API_URL": "https://sms_developer.zhenzikj.com"}, {}),
        ({"API_URL": "http://127.0.0.1:notaport"}, {}),
        ({}, {}),
    ],
)
def test_management_command_defaults_come_from_settings(zhenzi, expected):
    with override_settings(ZHENZI=zhenzi):
        assert defaults_from_settings() == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--fault", "cut=2"], "between 0 and 1"), (["--report-format", "xml"], "invalid choice")],
)
def test_management_command_rejects_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("zhenzi_sandbox", "--port", "0", *args)
