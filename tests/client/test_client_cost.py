"""The client's CPU per request: a send does not go through ``Session.request``, whose merging of
the session's settings into every request was a third of a busy worker's CPU time."""

from __future__ import annotations

import requests

from django_zhenzi.client import ZhenziClient

APP_ID = "test-app"
APP_SECRET = "test-secret-value"


def test_a_send_skips_the_per_request_merge_of_session_settings(sandbox, monkeypatch):
    def merged(*args: object, **kwargs: object) -> None:
        raise AssertionError("Session.request was called")

    monkeypatch.setattr(requests.Session, "request", merged)
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=2) as client:
        answer = client.send("13800138000", "【测试】通知", message_id="cost-1")
        assert client.balance() >= 0

    assert answer.code == 0
    assert sandbox.request_count("cost-1") == 1


def test_the_request_carries_the_session_headers_and_the_form(sandbox):
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=2) as client:
        client.send("13800138000", "【测试】通知", message_id="cost-2")
        prepared = client._prepare("/sms/send.do", {"number": "13800138000"})

    assert prepared.headers["User-Agent"].startswith("django-zhenzi/")
    assert prepared.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=UTF-8"
    assert prepared.headers["Content-Length"] == str(len(prepared.body))
    assert prepared.url == sandbox.url + "/sms/send.do"
    assert prepared.body == (b"appId=test-app&appSecret=test-secret-value&number=13800138000")
