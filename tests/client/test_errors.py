"""The provider's error codes, odd answers, and transport failures: definitely not sent, or
maybe sent."""

from __future__ import annotations

import http.client
import json
import socket

import pytest
import requests

from django_zhenzi.client import (
    ZhenziAPIError,
    ZhenziClient,
    ZhenziMaybeSentError,
    ZhenziNotSentError,
    ZhenziTransportError,
)
from tests.client.servers import (
    APP_ID,
    APP_SECRET,
    free_port,
)

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


def test_connection_refused_is_not_sent():
    with ZhenziClient(f"http://127.0.0.1:{free_port()}", APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.send("13800138000", "【测试】通知")
    error = caught.value
    assert error.maybe_sent is False
    assert error.retryable is True
    assert isinstance(error.__cause__, ConnectionRefusedError)
    assert isinstance(error, requests.RequestException)  # what callers caught until 0.9


def test_dns_failure_is_not_sent(monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with ZhenziClient("https://sms.zhenzikj.invalid", APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.balance()
    assert isinstance(caught.value.__cause__, socket.gaierror)


def test_connect_timeout_is_not_sent(monkeypatch):
    def slow_connect(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", slow_connect)
    with ZhenziClient("http://127.0.0.1:8", APP_ID, APP_SECRET, timeout=0.2) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.send("13800138000", "【测试】通知")
    assert isinstance(caught.value.__cause__, TimeoutError)


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
    assert isinstance(caught.value.__cause__, TimeoutError)


def test_cut_connection_after_accepting_is_maybe_sent(client, sandbox):
    sandbox.fail_next("cut")

    with pytest.raises(ZhenziMaybeSentError) as caught:
        client.send("13800138000", "【测试】通知", message_id="cut-1")

    assert isinstance(caught.value.__cause__, http.client.RemoteDisconnected)
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


@pytest.mark.parametrize("timeout", [0, -1, "ten", None, True, (5, "x"), (0, 5)])
def test_a_timeout_that_is_not_seconds_is_refused_at_once(timeout):
    with pytest.raises(ValueError, match="A timeout must be a number of seconds above 0"):
        ZhenziClient("http://127.0.0.1:8", APP_ID, APP_SECRET, timeout=timeout)
