"""The log filter that keeps callback tokens out of access logs."""

import logging

from django.urls import reverse

from django_zhenzi.log import MASK, HideCallbackToken

TOKEN = "test-callback-token-0123456789"


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("django.server", logging.INFO, __file__, 1, message, args, None)


def test_the_token_in_a_logged_callback_path_is_masked():
    path = reverse("django_zhenzi:callback", kwargs={"token": TOKEN})
    entry = record('"%s %s HTTP/1.1" %s', "POST", path, 200)

    assert HideCallbackToken().filter(entry) is True
    assert TOKEN not in entry.getMessage()
    assert f"/zhenzi/callback/{MASK}/" in entry.getMessage()


def test_other_paths_are_left_alone():
    entry = record('"%s %s HTTP/1.1" %s', "GET", "/admin/", 200)

    assert HideCallbackToken().filter(entry) is True
    assert entry.getMessage() == '"GET /admin/ HTTP/1.1" 200'
    assert entry.args == ("GET", "/admin/", 200)


def test_a_prefixed_path_is_masked_too():
    entry = record('"POST /zh-hans/sms/hooks/callback/%s/ HTTP/1.1" 200', TOKEN)

    assert HideCallbackToken().filter(entry) is True
    assert entry.getMessage() == f'"POST /zh-hans/sms/hooks/callback/{MASK}/ HTTP/1.1" 200'
