"""The provider client, against the sandbox over real HTTP.

A small recording server stands in where the sandbox cannot produce the case (odd answers,
redirects, TLS), and narrow mocks only for DNS failure and connect timeouts.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import urllib3.util.connection

from django_zhenzi import __version__
from django_zhenzi.client import (
    CHINA_TZ,
    SmsRecord,
    ZhenziAPIError,
    ZhenziClient,
    ZhenziError,
    ZhenziInputError,
    ZhenziMaybeSentError,
    ZhenziNotSentError,
    ZhenziTransportError,
)

APP_ID = "test-app"
APP_SECRET = "test-secret-value"


@pytest.fixture
def client(sandbox) -> Iterator[ZhenziClient]:
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=2) as zhenzi:
        yield zhenzi


class Recorder:
    """An HTTP server that records each request and answers with a set status and body."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.body: bytes = b'{"code":0,"data":"\xe5\x8f\x91\xe9\x80\x81\xe6\x88\x90\xe5\x8a\x9f"}'
        self.headers: dict[str, str] = {}
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                recorder.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                self.send_response(recorder.status)
                for name, value in recorder.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(recorder.body)))
                self.end_headers()
                self.wfile.write(recorder.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def answer(self, body: bytes | dict, status: int = 200, **headers: str) -> None:
        self.body = json.dumps(body).encode() if isinstance(body, dict) else body
        self.status = status
        self.headers = headers

    def form(self, index: int = -1) -> dict[str, str]:
        fields = parse_qs(self.requests[index]["body"].decode("utf-8"), keep_blank_values=True)
        return {name: values[0] for name, values in fields.items()}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


# --- Sending -------------------------------------------------------------------------------------


def test_send_text_reaches_the_sandbox(client, sandbox):
    answer = client.send("13800138000", "【测试】您的订单已发货", message_id="msg-1")

    assert answer.code == 0
    assert answer.data == "发送成功"
    record = sandbox.message("msg-1")
    assert record["number"] == "13800138000"
    assert record["message"] == "【测试】您的订单已发货"
    assert sandbox.request_count("msg-1") == 1


def test_send_template_fills_the_params(client, sandbox):
    client.send_template("13800138000", "1001", ["9988", "15分钟"], message_id="tpl-1")

    assert sandbox.message("tpl-1")["message"] == "【榛子沙箱】您的验证码是9988，15分钟内有效。"


def test_client_ip_and_normalized_number_are_sent(client, sandbox):
    client.send("+86 138-0013-8000", "【测试】通知", message_id="ip-1", client_ip=" 203.0.113.7 ")

    record = sandbox.message("ip-1")
    assert record["number"] == "13800138000"
    assert record["clientIp"] == "203.0.113.7"


def test_balance_goes_down_per_message(client, sandbox):
    before = client.balance()
    client.send("13800138000", "【测试】通知")

    assert isinstance(before, int)
    assert client.balance() == before - 1


def test_find_message_returns_a_typed_record(client, sandbox):
    client.send("13800138000", "【测试】查询", message_id="find-1")

    record = client.find_message("find-1")

    assert isinstance(record, SmsRecord)
    assert record.message_id == "find-1"
    assert record.number == "13800138000"
    assert record.message == "【测试】查询"
    assert record.create_time.utcoffset() == timedelta(hours=8)
    assert abs(record.create_time - datetime.now(CHINA_TZ)) < timedelta(minutes=1)


def test_find_message_unknown_is_none(client):
    assert client.find_message("never-sent") is None


def test_many_sends_reuse_one_connection(client, sandbox):
    opened = []
    original = urllib3.util.connection.create_connection

    def counting(*args, **kwargs):
        opened.append(args)
        return original(*args, **kwargs)

    urllib3.util.connection.create_connection = counting
    try:
        for index in range(5):
            client.send("13800138000", "【测试】通知", message_id=f"pool-{index}")
    finally:
        urllib3.util.connection.create_connection = original
    assert len(opened) == 1


# --- The request on the wire ---------------------------------------------------------------------


def test_request_is_a_form_post_like_the_official_clients(recorder):
    client = ZhenziClient(recorder.url, APP_ID, APP_SECRET)
    client.send("13800138000", "【测试】通知", message_id="wire-1", client_ip="10.0.0.1")
    client.close()

    request = recorder.requests[0]
    assert request["path"] == "/sms/send.do"
    assert request["headers"]["Content-Type"] == (
        "application/x-www-form-urlencoded; charset=UTF-8"
    )
    assert request["headers"]["User-Agent"].startswith(f"django-zhenzi/{__version__} ")
    assert recorder.form() == {
        "appId": APP_ID,
        "appSecret": APP_SECRET,
        "number": "13800138000",
        "message": "【测试】通知",
        "messageId": "wire-1",
        "clientIp": "10.0.0.1",
    }


def test_template_params_travel_as_one_json_array_field(recorder):
    client = ZhenziClient(recorder.url, APP_ID, APP_SECRET)
    client.send_template("13800138000", 1001, ["9988", "15分钟"])
    client.close()

    assert recorder.requests[0]["path"] == "/sms/v2/send.do"
    form = recorder.form()
    assert form["templateId"] == "1001"
    assert json.loads(form["templateParams"]) == ["9988", "15分钟"]
    assert "15分钟" in form["templateParams"]


def test_api_url_path_and_trailing_slash(recorder):
    client = ZhenziClient(recorder.url + "/", APP_ID, APP_SECRET)
    recorder.answer({"code": 0, "data": 42})
    assert client.balance() == 42
    client.close()
    assert recorder.requests[0]["path"] == "/account/balance.do"


# --- Validation before any HTTP call -------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.send("13800138000", ""), "message"),
        (lambda c: c.send("13800138000", "   "), "message"),
        (lambda c: c.send("13800138000", "长" * 1001), "message"),
        (lambda c: c.send("13800138000", "😀" * 501), "message"),
        (lambda c: c.send("13800138000", None), "message"),
        (lambda c: c.send("13800138000,13900139000", "【测试】x"), "number"),
        (lambda c: c.send("13800138000 13900139000", "【测试】x"), "number"),
        (lambda c: c.send("12345", "【测试】x"), "number"),
        (lambda c: c.send("", "【测试】x"), "number"),
        (lambda c: c.send(["13800138000"], "【测试】x"), "number"),
        (lambda c: c.send("12800138000", "【测试】x"), "number"),
        (lambda c: c.send_template("13800138000", "1001", "9988"), "template_params"),
        (lambda c: c.send_template("13800138000", "1001", [9988]), "template_params"),
        (lambda c: c.send_template("13800138000", "1001", ["a", None]), "template_params"),
        (lambda c: c.send_template("13800138000", "", ["a"]), "template_id"),
        (lambda c: c.send("13800138000", "【测试】x", message_id=""), "message_id"),
        (lambda c: c.send("13800138000", "【测试】x", message_id="a b"), "message_id"),
        (lambda c: c.send("13800138000", "【测试】x", message_id="x" * 65), "message_id"),
        (lambda c: c.send("13800138000", "【测试】x", client_ip="not-an-ip"), "client_ip"),
        (lambda c: c.find_message("../etc"), "message_id"),
    ],
)
def test_bad_input_is_refused_before_any_request(recorder, call, field):
    client = ZhenziClient(recorder.url, APP_ID, APP_SECRET)

    with pytest.raises(ZhenziInputError) as caught:
        call(client)

    client.close()
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert recorder.requests == []


def test_exactly_1000_characters_is_accepted(client, sandbox):
    client.send("13800138000", "【测试】" + "长" * 996, message_id="max-1")
    assert len(sandbox.message("max-1")["message"]) == 1000


# --- Provider errors -----------------------------------------------------------------------------


def test_wrong_secret_is_a_typed_provider_error(sandbox):
    client = ZhenziClient(sandbox.url, APP_ID, "wrong-secret-value")

    with pytest.raises(ZhenziAPIError) as caught:
        client.send("13800138000", "【测试】通知")

    client.close()
    error = caught.value
    assert error.code == 110
    assert isinstance(error.data, str) and error.data
    assert error.explanation.meaning == "Wrong appSecret"
    assert "秘钥" in error.explanation.meaning_zh
    assert "APP_SECRET" in error.hint
    assert error.hint_zh
    assert error.retryable is False
    assert error.endpoint == "/sms/send.do"
    assert "110" in str(error)


def test_wrong_app_id_is_105(sandbox):
    with ZhenziClient(sandbox.url, "nobody", APP_SECRET) as client:
        with pytest.raises(ZhenziAPIError) as caught:
            client.balance()
    assert caught.value.code == 105


def test_insufficient_balance_is_retryable(client, sandbox):
    sandbox.balance = 0

    with pytest.raises(ZhenziAPIError) as caught:
        client.send("13800138000", "【测试】通知")

    assert caught.value.code == 108
    assert caught.value.retryable is True


def test_code_1000_is_retryable(client, sandbox):
    sandbox.fail_next("code1000")

    with pytest.raises(ZhenziAPIError) as caught:
        client.send("13800138000", "【测试】通知")

    assert caught.value.code == 1000
    assert caught.value.retryable is True


def test_unknown_template_is_117(client):
    with pytest.raises(ZhenziAPIError) as caught:
        client.send_template("13800138000", "424242", ["x"])
    assert caught.value.code == 117
    assert not caught.value.retryable


def test_undocumented_code_gets_a_generic_explanation(recorder):
    recorder.answer({"code": 4242, "data": "新错误"})
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziAPIError) as caught:
            client.balance()
    assert caught.value.code == 4242
    assert caught.value.data == "新错误"
    assert caught.value.retryable is False


# --- Transport failures: definitely not sent -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_not_sent():
    with ZhenziClient(f"http://127.0.0.1:{free_port()}", APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.send("13800138000", "【测试】通知")
    error = caught.value
    assert error.maybe_sent is False
    assert error.retryable is True
    assert isinstance(error.__cause__, requests.ConnectionError)
    assert isinstance(error, requests.RequestException)


def test_dns_failure_is_not_sent(monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with ZhenziClient("https://sms.zhenzikj.invalid", APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.balance()
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_connect_timeout_is_not_sent(monkeypatch):
    def slow_connect(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", slow_connect)
    with ZhenziClient("http://127.0.0.1:8", APP_ID, APP_SECRET, timeout=0.2) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.send("13800138000", "【测试】通知")
    assert isinstance(caught.value.__cause__, requests.ConnectTimeout)


def test_http_4xx_is_not_sent(recorder):
    recorder.answer(b"<html>not found</html>", status=404)
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.send("13800138000", "【测试】通知")
    assert caught.value.status_code == 404
    assert "not found" in caught.value.body


def test_redirect_is_not_followed(recorder):
    recorder.answer(b"", status=302, Location="/elsewhere")
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError):
            client.send("13800138000", "【测试】通知")
    assert [r["path"] for r in recorder.requests] == ["/sms/send.do"]


# --- Transport failures: maybe sent --------------------------------------------------------------


def test_read_timeout_is_maybe_sent(sandbox):
    sandbox.fail_next("timeout")
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=0.3) as client:
        with pytest.raises(ZhenziMaybeSentError) as caught:
            client.send("13800138000", "【测试】通知", message_id="slow-1")
    assert caught.value.maybe_sent is True
    assert caught.value.retryable is False
    assert isinstance(caught.value.__cause__, requests.ReadTimeout)


def test_cut_connection_after_accepting_is_maybe_sent(client, sandbox):
    sandbox.fail_next("cut")

    with pytest.raises(ZhenziMaybeSentError) as caught:
        client.send("13800138000", "【测试】通知", message_id="cut-1")

    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert sandbox.accepted_count("cut-1") == 1
    assert client.find_message("cut-1").message_id == "cut-1"


def test_http_500_is_maybe_sent(client, sandbox):
    sandbox.fail_next("http500")
    with pytest.raises(ZhenziMaybeSentError) as caught:
        client.send("13800138000", "【测试】通知")
    assert caught.value.status_code == 500


def test_non_json_body_is_maybe_sent(client, sandbox):
    sandbox.fail_next("non_json")
    with pytest.raises(ZhenziMaybeSentError) as caught:
        client.send("13800138000", "【测试】通知")
    assert isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize(
    "body",
    [b'{"data": "no code"}', b'{"code": "0", "data": 1}', b"[1, 2]", b"\xff\xfe not utf-8"],
)
def test_answer_without_an_integer_code_is_maybe_sent(recorder, body):
    recorder.answer(body)
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziMaybeSentError):
            client.send("13800138000", "【测试】通知")


def test_the_client_recovers_after_a_fault(client, sandbox):
    sandbox.fail_next("cut")
    with pytest.raises(ZhenziMaybeSentError):
        client.send("13800138000", "【测试】通知")
    assert client.send("13800138000", "【测试】通知").code == 0


# --- Odd answers from balance and findSmsByMessageId ---------------------------------------------


def test_balance_that_is_not_a_number(recorder):
    recorder.answer({"code": 0, "data": "lots"})
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziTransportError):
            client.balance()


def test_record_given_as_a_json_string_and_odd_time(recorder):
    record = {"messageId": "m1", "number": "13800138000", "status": "success", "createTime": "x"}
    recorder.answer({"code": 0, "data": json.dumps(record)})
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        found = client.find_message("m1")
    assert found.number == "13800138000"
    assert found.status == "success"
    assert found.create_time is None


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = Recorder()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    server.thread.start()
    yield server.url.replace("http://", "https://")
    server.server.shutdown()
    server.server.server_close()


def test_tls_certificates_are_verified(self_signed_server):
    with ZhenziClient(self_signed_server, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.balance()
    assert isinstance(caught.value.__cause__, requests.exceptions.SSLError)


# --- The secret stays secret ---------------------------------------------------------------------


def every_error(sandbox, recorder) -> Iterator[ZhenziError]:
    def attempt(client: ZhenziClient, call) -> ZhenziError:
        try:
            call(client)
        except ZhenziError as error:
            return error
        raise AssertionError("no error raised")

    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=0.3) as client:
        for kind in ("timeout", "http500", "non_json", "code1000", "cut"):
            sandbox.fail_next(kind)
            yield attempt(client, lambda c: c.send("13800138000", "【测试】x"))
        yield attempt(client, lambda c: c.send("1", "x"))
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET + "-wrong") as client:
        yield attempt(client, lambda c: c.balance())
    with ZhenziClient(f"http://127.0.0.1:{free_port()}", APP_ID, APP_SECRET) as client:
        yield attempt(client, lambda c: c.balance())
    recorder.answer(f"<html>echo appSecret={APP_SECRET}</html>".encode(), status=502)
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        yield attempt(client, lambda c: c.balance())
    recorder.answer({"code": 1000, "data": f"bad secret {APP_SECRET}"})
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        yield attempt(client, lambda c: c.balance())


def test_secret_never_in_errors_reprs_or_logs(sandbox, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    errors = list(every_error(sandbox, recorder))

    assert len(errors) == 10
    client = ZhenziClient(sandbox.url, APP_ID, APP_SECRET)
    texts = [repr(client), str(vars(client).get("session"))]
    client.close()
    for error in errors:
        texts += [str(error), repr(error), str(vars(error))]
        cause = error.__cause__
        texts += [str(cause), repr(cause)] if cause else []
        if isinstance(cause, requests.RequestException):
            # The prepared request (its body holds the secret) is not kept on the cause.
            assert cause.request is None
            assert cause.response is None
    texts += [record.getMessage() for record in caplog.records]
    assert any("POST /sms/send.do" in text for text in texts)
    assert not [text for text in texts if APP_SECRET in text]


def test_client_module_imports_no_django():
    code = (
        "import sys, django_zhenzi.client; "
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.strip() == "[]"


def test_proxies_and_ca_bundle_come_from_the_environment_once(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    with ZhenziClient("https://sms.zhenzikj.com", APP_ID, APP_SECRET) as client:
        assert client.session.proxies["https"] == "http://proxy.example:3128"
        assert client.session.verify == str(bundle)
        assert client.session.trust_env is False


def test_no_proxy_from_the_environment_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    with ZhenziClient("http://127.0.0.1:8086", APP_ID, APP_SECRET) as client:
        assert client.session.proxies == {}
        assert client.session.verify is True
