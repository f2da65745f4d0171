"""The real thing: messages go to Zhenzi Cloud through the client."""

from __future__ import annotations

from typing import Any

from django_zhenzi.backends.base import BaseSmsBackend, OutgoingSms
from django_zhenzi.client import SmsRecord, ZhenziClient
from django_zhenzi.client.http import Secret
from django_zhenzi.conf import zhenzi_settings

#: Connections kept per thread's backend; one worker thread uses one at a time.
POOL_SIZE = 4


class SmsBackend(BaseSmsBackend):
    """Each option, when given, overrides its setting for this instance: ``app_id``,
    ``app_secret``, ``api_url``, ``timeout`` (``get_backend(app_id=..., app_secret=...)``
    sends through another Zhenzi app).

    An empty account setting (``APP_ID``, ``APP_SECRET``, ``API_URL``) raises
    ImproperlyConfigured; an empty option given here raises ValueError.
    """

    def __init__(
        self,
        *,
        app_id: str | None = None,
        app_secret: str | None = None,
        api_url: str | None = None,
        timeout: float | tuple[float, float] | None = None,
        **options: Any,
    ) -> None:
        secret = None if app_secret is None else Secret(app_secret)
        del app_secret  # out of this frame's locals, should a line below raise
        super().__init__(**options)
        if "" in (app_id, api_url) or (secret is not None and not secret.reveal()):
            raise ValueError("The Zhenzi backend's app_id, app_secret and api_url can't be empty.")
        self.client = ZhenziClient(
            zhenzi_settings.require("API_URL") if api_url is None else api_url,
            zhenzi_settings.require("APP_ID") if app_id is None else app_id,
            Secret(zhenzi_settings.require("APP_SECRET")) if secret is None else secret,
            timeout=zhenzi_settings.TIMEOUT if timeout is None else timeout,
            pool_size=POOL_SIZE,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.SmsBackend {self.client!r}>"

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
