"""Accepts every message and does nothing with it."""

from __future__ import annotations

from typing import Any

from django_zhenzi.backends.base import BaseSmsBackend, OutgoingSms


class SmsBackend(BaseSmsBackend):
    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        return {"code": 0, "data": "dummy"}
