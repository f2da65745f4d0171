"""HTTP client for the Zhenzi Cloud SMS API. Knows nothing of Django.

Requests are form-encoded POSTs, as the provider's official clients send them, over kept-alive
connections (``client.transport``) with TLS verification on and a timeout on every call.
Redirects are not followed (a redirected POST would arrive as a GET) and nothing is retried here:
whether a retry is safe depends on the message's history, which the caller knows.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from django_zhenzi import __version__
from django_zhenzi.client.errors import (
    ZhenziAPIError,
    ZhenziMaybeSentError,
    ZhenziNotSentError,
    ZhenziTransportError,
)
from django_zhenzi.client.transport import Reply, Transport, TransportFailure
from django_zhenzi.client.validation import (
    normalize_number,
    validate_client_ip,
    validate_message,
    validate_message_id,
    validate_template_id,
    validate_template_params,
)

logger = logging.getLogger("django_zhenzi.client")

SEND_PATH = "/sms/send.do"
SEND_TEMPLATE_PATH = "/sms/v2/send.do"
BALANCE_PATH = "/account/balance.do"
FIND_MESSAGE_PATH = "/smslog/findSmsByMessageId.do"

#: China has kept UTC+8 without daylight saving since 1991; the API's times are in it.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
USER_AGENT = f"django-zhenzi/{__version__} Python/{platform.python_version()}"
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
_BODY_EXCERPT_LENGTH = 200
_BALANCE = re.compile(r"[0-9]+")  # not str.isdigit(): it takes "²", which int() refuses


@dataclass(frozen=True)
class ZhenziAnswer:
    """A successful answer: ``code`` is 0 and ``data`` is what the endpoint returns."""

    code: int
    data: Any


@dataclass(frozen=True)
class SmsRecord:
    """A sent message as ``findSmsByMessageId`` describes it."""

    message_id: str
    number: str
    message: str
    status: str
    create_time: datetime | None
    app_name: str
    raw: Mapping[str, Any] = field(repr=False)


def parse_china_time(value: Any) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` in China time, as an aware datetime; None when absent or odd."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


class Secret:
    """A value kept out of every ``repr``, and so out of the local variables a debug page
    (Django's technical 500 page) or an error reporter shows: only :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def reveal(self) -> str:
        return self._value


def mask_number(number: str) -> str:
    """A phone number fit for logs: 138****8000."""
    return f"{number[:3]}****{number[-4:]}" if len(number) >= 8 else "****"


class ZhenziClient:
    """One Zhenzi app's API: ``send``, ``send_template``, ``balance`` and ``find_message``."""

    def __init__(
        self,
        api_url: str,
        app_id: str,
        app_secret: str | Secret,
        *,
        timeout: float | tuple[float, float] = 10.0,
        pool_size: int = 10,
    ) -> None:
        self._app_secret = app_secret if isinstance(app_secret, Secret) else Secret(app_secret)
        del app_secret  # out of this frame's locals, should a line below raise
        self.api_url = api_url.rstrip("/")
        self.app_id = app_id
        self.timeout = timeout
        self.transport = Transport(
            self.api_url,
            headers={"User-Agent": USER_AGENT, "Content-Type": _FORM_CONTENT_TYPE},
            timeout=timeout,
            pool_size=pool_size,
        )

    def __repr__(self) -> str:
        return f"<ZhenziClient api_url={self.api_url!r} app_id={self.app_id!r}>"

    def __enter__(self) -> ZhenziClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def send(
        self,
        number: str,
        message: str,
        message_id: str | None = None,
        client_ip: str | None = None,
    ) -> ZhenziAnswer:
        """Send a free-text message (its signature ``【...】`` belongs in the text)."""
        fields = {"number": normalize_number(number), "message": validate_message(message)}
        return self._post_message(SEND_PATH, fields, message_id, client_ip)

    def send_template(
        self,
        number: str,
        template_id: str | int,
        params: Sequence[str],
        message_id: str | None = None,
        client_ip: str | None = None,
    ) -> ZhenziAnswer:
        """Send a console template; ``params`` fill its placeholders in order."""
        fields = {
            "number": normalize_number(number),
            "templateId": validate_template_id(template_id),
            "templateParams": json.dumps(validate_template_params(params), ensure_ascii=False),
        }
        return self._post_message(SEND_TEMPLATE_PATH, fields, message_id, client_ip)

    def balance(self) -> int:
        """SMS left on the account (shared by every app of the account)."""
        data = self._post(BALANCE_PATH, {}).data
        if (
            isinstance(data, bool)
            or not isinstance(data, (int, str))
            or not _BALANCE.fullmatch(str(data))
        ):
            raise ZhenziMaybeSentError(
                f"Unexpected balance in the answer: {data!r}",
                endpoint=BALANCE_PATH,
                kind="unexpected_balance",
                params={"answer": repr(data)},
            )
        return int(data)

    def find_message(self, message_id: str) -> SmsRecord | None:
        """The provider's record of a message, or None when it knows no such messageId."""
        data = self._post(FIND_MESSAGE_PATH, {"messageId": validate_message_id(message_id)}).data
        if data in (None, "", {}, []):
            return None
        if isinstance(data, str):
            data = self._decode_json(data, FIND_MESSAGE_PATH)
        if not isinstance(data, dict):
            raise ZhenziMaybeSentError(
                f"Unexpected record in the answer: {type(data).__name__}",
                endpoint=FIND_MESSAGE_PATH,
                kind="unexpected_record",
                params={"type": type(data).__name__},
            )
        return SmsRecord(
            message_id=str(data.get("messageId") or message_id),
            number=str(data.get("toNumber") or data.get("number") or ""),
            message=str(data.get("message") or ""),
            status=str(data.get("status") or ""),
            create_time=parse_china_time(data.get("createTime")),
            app_name=str(data.get("appName") or ""),
            raw=data,
        )

    def _post_message(
        self,
        path: str,
        fields: dict[str, str],
        message_id: str | None,
        client_ip: str | None,
    ) -> ZhenziAnswer:
        if message_id is not None:
            fields["messageId"] = validate_message_id(message_id)
        if client_ip is not None:
            fields["clientIp"] = validate_client_ip(client_ip)
        return self._post(path, fields)

    def _post(self, path: str, fields: dict[str, str]) -> ZhenziAnswer:
        """POST ``fields`` with the credentials.

        The form holding the app secret is built inside the call, so no frame of this client
        holds it in a variable; the transport's frames do, so an error raised there loses its
        traceback (and with it those frames) before it goes further: a debug page shows every
        frame's local variables.
        """
        started = time.monotonic()
        try:
            reply = self.transport.post(path, urlencode(self._form(fields)).encode("ascii"))
        except TransportFailure as failure:
            _drop_tracebacks(failure)
            error = self._transport_error(failure, path)
            self._log(path, fields, started, f"{type(error).__name__}: {error}")
            raise error from failure.error
        except Exception as exc:  # not a network error: a bug, there or here
            _drop_tracebacks(exc)
            raise exc  # not a bare raise: that would leave out this frame too
        try:
            answer = self._read_answer(reply, path)
        except (ZhenziTransportError, ZhenziAPIError) as error:
            self._log(path, fields, started, f"{type(error).__name__}: {error}")
            raise
        self._log(path, fields, started, "code 0")
        return answer

    def _form(self, fields: Mapping[str, str]) -> dict[str, str]:
        return {"appId": self.app_id, "appSecret": self._app_secret.reveal(), **fields}

    def _read_answer(self, reply: Reply, path: str) -> ZhenziAnswer:
        status = reply.status
        if status >= 500:
            raise ZhenziMaybeSentError(
                f"HTTP {status} from {path}: the provider may have processed the request",
                endpoint=path,
                status_code=status,
                body=self._excerpt(reply.body),
                kind="http_maybe_processed",
                params={"status": status, "path": path},
            )
        if not 200 <= status < 300:
            raise ZhenziNotSentError(
                f"HTTP {status} from {path}: the request was refused before processing "
                f"(check ZHENZI['API_URL'])",
                endpoint=path,
                status_code=status,
                body=self._excerpt(reply.body),
                kind="http_refused",
                params={"status": status, "path": path},
            )
        answer = self._decode_json(reply.body, path)
        code = answer.get("code") if isinstance(answer, dict) else None
        if isinstance(code, bool) or not isinstance(code, int):
            raise ZhenziMaybeSentError(
                f"The answer from {path} has no integer 'code'",
                endpoint=path,
                status_code=status,
                body=self._excerpt(reply.body),
                kind="no_code",
                params={"path": path},
            )
        if code != 0:
            raise ZhenziAPIError(code, self._redact(answer.get("data")), endpoint=path)
        return ZhenziAnswer(code=0, data=answer.get("data"))

    def _decode_json(self, content: bytes | str, path: str) -> Any:
        try:
            return json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise ZhenziMaybeSentError(
                f"The answer from {path} is not JSON",
                endpoint=path,
                body=self._excerpt(content),
                kind="not_json",
                params={"path": path},
            ) from exc

    def _transport_error(self, failure: TransportFailure, path: str) -> ZhenziTransportError:
        detail = self._redact(str(failure))
        params = {"url": self.api_url + path, "detail": detail}
        if not failure.sent:
            # Every request says "nothing was sent" here; only a send's kind says so to readers.
            sending = path in (SEND_PATH, SEND_TEMPLATE_PATH)
            return ZhenziNotSentError(
                f"Could not reach {self.api_url}{path}, nothing was sent ({detail})",
                endpoint=path,
                kind="not_sent" if sending else "unreachable",
                params=params,
            )
        return ZhenziMaybeSentError(
            f"No answer from {self.api_url}{path}; the request may have been processed ({detail})",
            endpoint=path,
            kind="no_answer",
            params=params,
        )

    def _excerpt(self, content: bytes | str) -> str:
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        return self._redact(text[:_BODY_EXCERPT_LENGTH])

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str) and self._app_secret.reveal():
            return value.replace(self._app_secret.reveal(), "********")
        return value

    def _log(self, path: str, fields: Mapping[str, str], started: float, outcome: str) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        number = fields.get("number")
        logger.debug(
            "POST %s number=%s messageId=%s: %s (%.0f ms)",
            path,
            mask_number(number) if number else "-",
            fields.get("messageId", "-"),
            outcome,
            (time.monotonic() - started) * 1000,
        )


def _drop_tracebacks(error: BaseException) -> None:
    """Forget the frames of ``error`` and of every error it holds (their local variables)."""
    for each in _chain(error):
        each.__traceback__ = None


def _chain(error: BaseException) -> list[BaseException]:
    """The error, its arguments that are errors, and its causes."""
    seen: list[BaseException] = []
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        pending.extend([current.__cause__, current.__context__, *current.args])
    return seen
