"""What the tests of callback share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from django.db import connection
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


REFUSE_UPDATES = {
    "postgresql": [
        "CREATE FUNCTION zhenzi_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the status update failed'; END $$",
        "CREATE TRIGGER zhenzi_test_refuse BEFORE UPDATE ON django_zhenzi_message "
        "FOR EACH ROW EXECUTE FUNCTION zhenzi_test_refuse()",
    ],
    "sqlite": [
        "CREATE TRIGGER zhenzi_test_refuse BEFORE UPDATE ON django_zhenzi_message "
        "BEGIN SELECT RAISE(ABORT, 'the status update failed'); END"
    ],
    "mysql": [
        "CREATE TRIGGER zhenzi_test_refuse BEFORE UPDATE ON django_zhenzi_message FOR EACH ROW "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the status update failed'"
    ],
}
ALLOW_UPDATES = {
    "postgresql": [
        "DROP TRIGGER zhenzi_test_refuse ON django_zhenzi_message",
        "DROP FUNCTION zhenzi_test_refuse()",
    ],
    "sqlite": ["DROP TRIGGER zhenzi_test_refuse"],
    "mysql": ["DROP TRIGGER zhenzi_test_refuse"],
}


@contextmanager
def refused_message_updates() -> Iterator[None]:
    """The database itself refuses every UPDATE of a message (a trigger raises), after the
    report's INSERT, in whichever statement or transaction the write runs. MySQL commits on
    CREATE TRIGGER: use it in a test with ``transaction=True``."""
    with connection.cursor() as cursor:
        for sql in REFUSE_UPDATES[connection.vendor]:
            cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for sql in ALLOW_UPDATES[connection.vendor]:
                cursor.execute(sql)
