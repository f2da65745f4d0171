"""The sandbox's faults: timeouts, cut connections, late answers, error answers, rates and
latency."""

from __future__ import annotations

import socket
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from django_zhenzi.sandbox import Sandbox
from tests.sandbox.clients import (
    BALANCE,
    CHINA,
    CREDENTIALS,
    FIND,
    SEND,
    TEXT,
    address,
)

pytestmark = pytest.mark.slow


# --- Faults ---


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
