"""The client's own HTTP/1.1 (``client.transport``): every framing a server may answer with is read
whole and right, what is not HTTP is an answer that never came (the message may have been sent),
and a connection is kept only when its answer allows."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator

import pytest

from django_zhenzi.client import ZhenziClient, ZhenziMaybeSentError, ZhenziNotSentError
from django_zhenzi.client.transport import MAX_ANSWER_BYTES, Transport
from tests.client.servers import APP_ID, APP_SECRET, RawServer

BODY = b'{"code":0,"data":"\xe5\x8f\x91\xe9\x80\x81\xe6\x88\x90\xe5\x8a\x9f"}'
SENT = "发送成功"


def sized(body: bytes = BODY, *headers: bytes, status: bytes = b"200 OK") -> bytes:
    lines = b"".join(header + b"\r\n" for header in headers)
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), lines, body)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def start(*answers: tuple[bytes | list[bytes], bool]) -> RawServer:
        started.append(RawServer(list(answers)))
        return started[-1]

    yield start
    for server in started:
        server.close()


def send_twice(server: RawServer) -> list[str]:
    with ZhenziClient(server.url, APP_ID, APP_SECRET, timeout=2) as client:
        return [client.send("13800138000", "【测试】通知").data for _ in range(2)]


def test_a_chunked_answer_is_read_whole_and_its_connection_kept(raw_server):
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n"
        % (BODY[:5], len(BODY) - 5, BODY[5:])
    )
    server = raw_server((chunked, False), (sized(), False))

    assert send_twice(server) == [SENT, SENT]
    assert server.connections == 1


def test_an_answer_in_pieces_is_read_whole(raw_server):
    answer = sized()
    pieces = [answer[:3], answer[3:20], answer[20:-4], answer[-4:]]
    server = raw_server((pieces, False), (sized(), False))

    assert send_twice(server) == [SENT, SENT]
    assert server.connections == 1


def test_an_answer_without_a_length_ends_with_its_connection(raw_server):
    server = raw_server((b"HTTP/1.0 200 OK\r\n\r\n" + BODY, True), (sized(), False))

    assert send_twice(server) == [SENT, SENT]
    assert server.connections == 2


def test_an_http_1_0_answer_keeps_its_connection_only_when_it_says_so(raw_server):
    kept = b"HTTP/1.0" + sized(BODY, b"Connection: keep-alive")[len(b"HTTP/1.1") :]
    server = raw_server((kept, False), (b"HTTP/1.0" + sized()[len(b"HTTP/1.1") :], False))

    assert send_twice(server) == [SENT, SENT]
    assert server.connections == 1


def test_interim_answers_are_skipped(raw_server):
    server = raw_server((b"HTTP/1.1 100 Continue\r\n\r\n" + sized(), False), (sized(), False))

    assert send_twice(server) == [SENT, SENT]


def test_bytes_no_request_asked_for_leave_the_connection_unused(raw_server):
    server = raw_server((sized() + b"HTTP/1.1 200 OK\r\n", False), (sized(), False))

    assert send_twice(server) == [SENT, SENT]
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"SMTP ready\r\n\r\n", id="not-a-status-line"),
        pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", id="status-of-four-digits"),
        pytest.param(sized(BODY, b"Content-Length: 7"), id="two-lengths"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_ANSWER_BYTES + 1),
            id="too-large",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", id="bad-chunk-size"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 101 + b"Content-Length: 0\r\n\r\n",
            id="too-many-headers",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * 70000, id="endless-head"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", id="cut-short"),
        pytest.param(b"", id="closed-without-answer"),
    ],
)
def test_what_is_not_a_whole_http_answer_may_have_been_sent(raw_server, answer):
    server = raw_server((answer, True))
    with ZhenziClient(server.url, APP_ID, APP_SECRET, timeout=2) as client:
        with pytest.raises(ZhenziMaybeSentError) as caught:
            client.send("13800138000", "【测试】通知")

    assert isinstance(caught.value.__cause__, http.client.HTTPException)
    assert len(server.heads) == 1


def test_the_request_as_written(raw_server):
    server = raw_server((sized(), False))
    with ZhenziClient(server.url + "/base/", APP_ID, APP_SECRET, timeout=2) as client:
        client.send("13800138000", "【测试】通知", message_id="wire-1")

    head = server.heads[0].decode("latin-1")
    port = server.url.rsplit(":", 1)[1]
    assert head.startswith("POST /base/sms/send.do HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{port}\r\n" in head
    assert "\r\nAccept-Encoding: identity\r\n" in head
    assert "\r\nUser-Agent: django-zhenzi/" in head
    assert "\r\nContent-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n" in head
    assert "\r\nContent-Length: " in head


def test_a_header_that_would_split_the_request_is_refused():
    with pytest.raises(ValueError, match="header"):
        Transport("http://127.0.0.1:9", headers={"X-Note": "a\r\nInjected: yes"})


def test_a_base_url_whose_path_cannot_be_sent_is_not_sent(raw_server):
    server = raw_server((sized(), False))
    with ZhenziClient(server.url + "/a b", APP_ID, APP_SECRET, timeout=2) as client:
        with pytest.raises(ZhenziNotSentError, match="URL path"):
            client.send("13800138000", "【测试】通知")

    assert server.connections == 0
