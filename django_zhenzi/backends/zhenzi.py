"""The real thing: messages go to Zhenzi Cloud through the client."""

from __future__ import annotations

from typing import Any

from django_zhenzi.backends.base import BaseSmsBackend, OutgoingSms
from django_zhenzi.client import SmsRecord, ZhenziClient
from django_zhenzi.conf import zhenzi_settings

#: Connections kept per thread's backend; one worker thread uses one at a time.
POOL_SIZE = 4


class SmsBackend(BaseSmsBackend):
    def __init__(self) -> None:
        self.client = ZhenziClient(
            zhenzi_settings.API_URL,
            zhenzi_settings.require("APP_ID"),
            zhenzi_settings.require("APP_SECRET"),
            timeout=zhenzi_settings.TIMEOUT,
            pool_size=POOL_SIZE,
        )

    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        if sms.template_id:
            answer = self.client.send_template(
                sms.number, sms.template_id, sms.template_params, sms.message_id, sms.client_ip
            )
        else:
            answer = self.client.send(sms.number, sms.text, sms.message_id, sms.client_ip)
        return {"code": answer.code, "data": answer.data}

    def balance(self) -> int:
        return self.client.balance()

    def find_message(self, message_id: str) -> SmsRecord | None:
        return self.client.find_message(message_id)

    def close(self) -> None:
        self.client.close()
