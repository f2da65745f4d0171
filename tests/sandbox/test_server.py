"""The sandbox's control API and its HTTP server."""

from __future__ import annotations

import json
import socket
import time
from http.client import HTTPConnection
from urllib.parse import urlencode

import pytest

from tests.sandbox.clients import (
    APP_SECRET,
    BALANCE,
    CREDENTIALS,
    FIND,
    SEND,
    TEMPLATE_SEND,
    TEXT,
    address,
    raw_request,
)

pytestmark = pytest.mark.slow


# --- The control API and the server ---


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
