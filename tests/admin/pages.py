"""What the admin tests share: the pages' URLs, and helpers to make rows and read answers."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from django_zhenzi import services
from django_zhenzi.models import Message

APP_SECRET = "test-secret-value"
LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback

MESSAGES_URL = "/admin/django_zhenzi/message/"
REPORTS_URL = "/admin/django_zhenzi/statusreport/"
BALANCE_URL = "/admin/django_zhenzi/balancesnapshot/"
SEND_URL = "/admin/django_zhenzi/message/send/"
ZH = {"headers": {"accept-language": "zh-hans"}}


def make_message(**fields) -> Message:
    fields.setdefault("number", "13800138000")
    fields.setdefault("text", "【测试】您的订单已发货")
    return Message.objects.create(**fields)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def all_app_permissions() -> set[str]:
    return set(
        Permission.objects.filter(content_type__app_label="django_zhenzi").values_list(
            "codename", flat=True
        )
    )


def run_action(client: Client, action: str, messages: list[Message]):
    return client.post(
        MESSAGES_URL,
        {"action": action, "_selected_action": [m.pk for m in messages]},
        follow=True,
    )


def sent_through_sandbox(numbers: list[str], capture) -> list[Message]:
    with capture(execute=True):
        rows = services.create_messages(numbers, services.Content(text="【测试】通知"), queue=False)
    return [Message.objects.get(message_id=row.message_id) for row in rows]


def send_form(**fields) -> dict[str, str]:
    return {"mode": "queue", "message": "【测试】通知", "template_id": "", **fields}
