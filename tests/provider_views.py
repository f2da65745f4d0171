"""Views that call the backend directly, the way a site's own code may, and let its errors
propagate: with DEBUG on, Django answers them with its technical 500 page, which shows every
frame's local variables. Wired in tests/urls.py under /provider/."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.urls import path

from django_zhenzi.backends import OutgoingSms, get_backend

app_name = "provider"


def send(request: HttpRequest) -> HttpResponse:
    sms = OutgoingSms(number="13800138000", message_id=uuid.uuid4().hex, text="【测试】通知")
    return HttpResponse(str(get_backend().send(sms)))


def balance(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(get_backend().balance()))


urlpatterns = [
    path("send/", send, name="send"),
    path("balance/", balance, name="balance"),
]
