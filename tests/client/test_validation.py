"""What the client refuses before any HTTP call."""

from __future__ import annotations

import pytest

from django_zhenzi.client import (
    ZhenziClient,
    ZhenziInputError,
)
from tests.client.servers import (
    APP_ID,
    APP_SECRET,
)

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
