"""Prints each message instead of sending it: for development."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from django_zhenzi.backends.base import BaseSmsBackend, OutgoingSms


class SmsBackend(BaseSmsBackend):
    def __init__(self, stream: TextIO | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.stream = stream

    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        content = sms.text or f"template {sms.template_id} {list(sms.template_params)}"
        stream = self.stream or sys.stdout
        stream.write(f"SMS to {sms.number} [{sms.message_id}]: {content}\n")
        stream.flush()
        return {"code": 0, "data": "console"}
