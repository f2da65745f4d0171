"""Keeps messages in ``django_zhenzi.outbox``, for tests (emptied before each test)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import django_zhenzi
from django_zhenzi.backends.base import BaseSmsBackend, OutgoingSms
from django_zhenzi.client import CHINA_TZ, SmsRecord

_lock = threading.Lock()


class SmsBackend(BaseSmsBackend):
    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        with _lock:
            django_zhenzi.outbox.append(sms)
        return {"code": 0, "data": "locmem"}

    def find_message(self, message_id: str) -> SmsRecord | None:
        with _lock:
            sent = [sms for sms in django_zhenzi.outbox if sms.message_id == message_id]
        if not sent:
            return None
        sms = sent[0]
        return SmsRecord(
            message_id=sms.message_id,
            number=sms.number,
            message=sms.text,
            status="success",
            create_time=datetime.now(CHINA_TZ),
            app_name="locmem",
            raw={},
        )
