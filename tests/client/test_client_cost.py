"""The client's transport: kept-alive connections of ``http.client`` (a third of the CPU of a
POST through requests, benchmarks/README.rst), reused only while the server keeps them open."""

from __future__ import annotations

import socket

import pytest
import requests

from django_zhenzi.client import ZhenziClient
from tests.client.servers import APP_ID, APP_SECRET


@pytest.fixture
def connections_opened(monkeypatch) -> list[tuple]:
    opened: list[tuple] = []
    original = socket.create_connection

    def counting(address, *args, **kwargs):
        opened.append(address)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting)
    return opened


def test_a_send_does_not_go_through_requests(sandbox, monkeypatch):
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("requests was used")

    monkeypatch.setattr(requests.Session, "request", refused)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refused)
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=2) as client:
        answer = client.send("13800138000", "【测试】通知", message_id="cost-1")
        assert client.balance() >= 0

    assert answer.code == 0
    assert sandbox.request_count("cost-1") == 1


def test_a_connection_the_server_closed_while_idle_is_not_written_to(recorder, connections_opened):
    recorder.hang_up = True
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET, timeout=2) as client:
        client.send("13800138000", "【测试】一", message_id="idle-1")
        assert recorder.hung_up.wait(5)
        client.send("13800138000", "【测试】二", message_id="idle-2")

    assert [recorder.form(index)["messageId"] for index in (0, 1)] == ["idle-1", "idle-2"]
    assert len(connections_opened) == 2


def test_an_answer_that_closes_its_connection_gives_it_up(recorder, connections_opened):
    recorder.answer(recorder.body, Connection="close")
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET, timeout=2) as client:
        for index in range(3):
            assert client.send("13800138000", "【测试】通知", message_id=f"close-{index}").code == 0

    assert len(connections_opened) == 3
    assert len(recorder.requests) == 3


def test_the_pool_keeps_at_most_pool_size_idle_connections(sandbox):
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=2, pool_size=2) as client:
        taken = [client.transport._take() for _ in range(4)]
        for connection in taken:
            client.transport._give_back(connection)
        assert len(client.transport._idle) == 2
        assert [c.sock is None for c in taken] == [False, False, True, True]
