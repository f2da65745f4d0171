"""The sandbox's API over real HTTP, called the way the official client calls it, and the
provider's rules it keeps."""

from __future__ import annotations

import json
import time
from datetime import datetime
from urllib.parse import urlencode

import pytest

from tests.sandbox.clients import (
    API_PATHS,
    APP_ID,
    APP_SECRET,
    BALANCE,
    CHINA,
    CREDENTIALS,
    FIND,
    SEND,
    TEMPLATE_SEND,
    TEXT,
    official_post,
    raw_request,
)

pytestmark = pytest.mark.slow


# --- The API, like the official client, and the provider's rules ---


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
