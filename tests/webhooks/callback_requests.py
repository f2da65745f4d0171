"""What the tests of callback share."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_zhenzi.models import Message
from django_zhenzi.status import Status

TOKEN = "test-callback-token-0123456789"  # tests/settings.py


APP_SECRET = "test-secret-value"  # tests/settings.py


OLD_TOKEN = "old-callback-token-aaaaaaaaaaaa"


NEW_TOKEN = "new-callback-token-bbbbbbbbbbbb"


FORM = "application/x-www-form-urlencoded; charset=UTF-8"


JSON = "application/json;charset=UTF-8"


LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"


VERIFICATION_TEXT = "【测试】您的验证码是 482913"


ANSWERS = {200, 400, 403, 405, 413}


def callback_url(token: str | None = TOKEN) -> str:
    """The callback URL for ``token``; None gives the URL without any token."""
    if token is None:
        return reverse("django_zhenzi:callback", kwargs={"token": "x"}).removesuffix("x/")
    return reverse("django_zhenzi:callback", kwargs={"token": token})


def post_form(client: Client, fields: dict, token: str | None = TOKEN):
    return client.post(callback_url(token), urlencode(fields), content_type=FORM)


def post_json(client: Client, document: object):
    return client.post(callback_url(), json.dumps(document), content_type=JSON)


def sandbox_report(message_id: str, status: str = "success", **fields: str) -> dict[str, str]:
    """A report in the sandbox's documented shape."""
    return {
        "messageId": message_id,
        "toNumber": "13800138000",
        "status": status,
        "errorCode": "DELIVRD" if status == "success" else "UNDELIV",
        "reportTime": "2025-01-02 03:04:05",
        "appName": "test-app",
        **fields,
    }


def make_message(status: str = Status.SENT, **fields) -> Message:
    moment = timezone.now()
    return Message.objects.create(
        number="13800138000",
        text=VERIFICATION_TEXT,
        status=status,
        sent_at=moment if status in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED) else None,
        **fields,
    )


def status_changes(seen: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    return [(kw["old_status"], kw["new_status"]) for name, kw in seen if name == "status_changed"]
