"""The client sends texts and templates, and what goes on the wire."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta

from django_zhenzi import __version__
from django_zhenzi.client import (
    CHINA_TZ,
    SmsRecord,
    ZhenziClient,
)
from tests.client.servers import (
    APP_ID,
    APP_SECRET,
)

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


def test_many_sends_reuse_one_connection(client, sandbox, monkeypatch):
    opened = []
    original = socket.create_connection

    def counting(*args, **kwargs):
        opened.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting)
    for index in range(5):
        client.send("13800138000", "【测试】通知", message_id=f"pool-{index}")
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
