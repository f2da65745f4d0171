"""Migration 0006 gives the failures stored before error kinds their kind and parameters, read
once from the English the services and the client wrote then; backwards, nothing is lost."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import translation

from django_zhenzi.client import ZhenziAPIError
from django_zhenzi.models import Message
from django_zhenzi.reasons import ErrorKind

BEFORE = [("django_zhenzi", "0004_alert_state")]
AFTER = [("django_zhenzi", "0006_message_error_kind_data")]

MASKED = (
    "Not sent again: the verification code it carried was kept only in memory; request a new code."
)
NEVER = {"kind": "never_received", "params": {}}
NOT_JSON = "The answer from /smslog/findSmsByMessageId.do is not JSON"
# The client's English is unchanged: its errors still write what was stored then.
REFUSED = str(ZhenziAPIError(108, "余额不足", endpoint="/sms/send.do"))
REPEATED = str(ZhenziAPIError(100, "messageId重复", endpoint="/sms/send.do"))

#: (text stored before kinds, its kind, its parameters, a piece of its Chinese rendering)
OLD_TEXTS = [
    ("The claim expired before an answer was recorded.", "claim_expired", {}, "超时"),
    ("The provider never received it.", "never_received", {}, "服务商未收到这条短信"),
    (
        "Taken as sent: the provider refused its messageId as already used, though "
        "findSmsByMessageId never showed it.",
        "duplicate_taken_as_sent",
        {},
        "视为已发送",
    ),
    ("The backend cannot look messages up.", "no_lookup", {}, "短信"),
    (MASKED, "masked_not_resent", {}, "请重新获取验证码"),
    (
        f"{MASKED} (The provider never received it.)",
        "masked_after_error",
        {"reason": NEVER},
        "未重新发送",
    ),
    (
        "Gave up after 5 attempts: The provider never received it.",
        "gave_up",
        {"count": 5, "reason": NEVER},
        "已尝试 5 次，不再重试：服务商未收到这条短信。",
    ),
    (
        f"Reconciliation failed, will ask again: {NOT_JSON}",
        "lookup_failed",
        {"reason": {"kind": "not_json", "params": {"path": "/smslog/findSmsByMessageId.do"}}},
        "的应答不是 JSON",
    ),
    (
        "Stored template parameters are not a list of strings: {'code': 1}",
        "bad_template_params",
        {"params": "{'code': 1}"},
        "{'code': 1}",
    ),
    (
        "Could not reach http://127.0.0.1:9/sms/send.do, nothing was sent (ConnectTimeout: x)",
        "not_sent",
        {"url": "http://127.0.0.1:9/sms/send.do", "detail": "ConnectTimeout: x"},
        "请求未发出",
    ),
    (
        "Could not reach http://127.0.0.1:9/account/balance.do, nothing was sent (DNS: x)",
        "unreachable",
        {"url": "http://127.0.0.1:9/account/balance.do", "detail": "DNS: x"},
        "无法连接",
    ),
    (
        "No answer from http://x.test/sms/send.do; the request may have been processed (Cut: x)",
        "no_answer",
        {"url": "http://x.test/sms/send.do", "detail": "Cut: x"},
        "请求可能已被处理",
    ),
    (
        "HTTP 502 from /sms/send.do: the provider may have processed the request",
        "http_maybe_processed",
        {"status": 502, "path": "/sms/send.do"},
        "服务商可能已处理该请求",
    ),
    (
        "HTTP 404 from /sms/send.do: the request was refused before processing (check "
        "ZHENZI['API_URL'])",
        "http_refused",
        {"status": 404, "path": "/sms/send.do"},
        "请求在处理前即被拒绝",
    ),
    (
        "The answer from /sms/send.do has no integer 'code'",
        "no_code",
        {"path": "/sms/send.do"},
        "整数",
    ),
    (NOT_JSON, "not_json", {"path": "/smslog/findSmsByMessageId.do"}, "的应答不是 JSON"),
    (
        "Unexpected balance in the answer: 'lots'",
        "unexpected_balance",
        {"answer": "'lots'"},
        "余额",
    ),
    ("Unexpected record in the answer: list", "unexpected_record", {"type": "list"}, "记录"),
    (
        REFUSED,
        "provider_error",
        {"code": 108, "endpoint": "/sms/send.do", "answer": "'余额不足'"},
        "榛子云返回错误 108（/sms/send.do）：短信余额不足（服务商返回：'余额不足'）",
    ),
    (
        REPEATED,
        "duplicate_message_id",
        {"code": 100, "endpoint": "/sms/send.do", "answer": "'messageId重复'"},
        "messageId 重复",
    ),
    (
        "'12345' is not a mainland China mobile number (11 digits starting with 1[3-9]).",
        "not_mobile_number",
        {"number": "'12345'"},
        "不是中国大陆手机号码",
    ),
    (
        "'1,2' holds several numbers; Zhenzi takes exactly one number per message.",
        "several_numbers",
        {"number": "'1,2'"},
        "包含多个号码",
    ),
    ("The phone number is empty.", "empty_number", {}, "手机号码为空。"),
    (
        "RuntimeError: something unforeseen",
        "other",
        {"text": "RuntimeError: something unforeseen"},
        "RuntimeError",
    ),
    (
        "Zhenzi error 108 on /x: made up",
        "other",
        {"text": "Zhenzi error 108 on /x: made up"},
        "made up",
    ),
]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


@pytest.fixture
def before_kinds():
    """The database as it was before error kinds (0004); back to the latest afterwards."""
    executor = migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    migrate(executor.loader.graph.leaf_nodes("django_zhenzi"))


@pytest.mark.django_db(transaction=True)
def test_stored_texts_get_their_kinds_and_backwards_nothing_is_lost(before_kinds):
    OldMessage = before_kinds.get_model("django_zhenzi", "Message")
    for index, (text, _kind, _params, _chinese) in enumerate(OLD_TEXTS):
        OldMessage.objects.create(number=f"1380000{index:04d}", status="failed", error_text=text)
    OldMessage.objects.create(number="13900000000", status="sent")  # no error: no kind

    migrate(AFTER)

    # Only the columns 0006 knows: later migrations add others (0007, the priority).
    migrated = Message.objects.only("error_text", "error_kind", "error_params")
    rows = {message.error_text: message for message in migrated}
    assert rows[""].error_kind == ErrorKind.NONE
    for text, kind, params, chinese in OLD_TEXTS:
        message = rows[text]
        assert (message.error_kind, message.error_params) == (kind, params), text
        with translation.override("zh-hans"):
            assert chinese in message.error_reason, (text, message.error_reason)
            if kind != ErrorKind.OTHER:
                assert message.error_reason != text

    migrate(BEFORE)
    restored = before_kinds.get_model("django_zhenzi", "Message").objects
    assert sorted(restored.values_list("error_text", flat=True)) == sorted(
        [""] + [text for text, *_ in OLD_TEXTS]
    )


@pytest.mark.django_db(transaction=True)
def test_rows_are_mapped_chunk_by_chunk(before_kinds, monkeypatch):
    migration = importlib.import_module("django_zhenzi.migrations.0006_message_error_kind_data")
    monkeypatch.setattr(migration, "CHUNK", 3)
    OldMessage = before_kinds.get_model("django_zhenzi", "Message")
    for index in range(8):
        OldMessage.objects.create(number=f"1380000{index:04d}", status="failed", error_text=MASKED)
    OldMessage.objects.create(number="13900000000", status="sent")

    migrate(AFTER)

    assert (
        sorted(Message.objects.values_list("error_kind", flat=True))
        == [""] + ["masked_not_resent"] * 8
    )
