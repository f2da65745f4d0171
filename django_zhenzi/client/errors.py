"""Errors raised by the Zhenzi client, and what each provider error code means.

One base class, :class:`ZhenziError`. Below it:

- :class:`ZhenziInputError`: the input was refused before any HTTP call.
- :class:`ZhenziAPIError`: the provider answered with a non-zero ``code``.
- :class:`ZhenziTransportError`: no usable answer, split in two by what it means for the message:
  :class:`ZhenziNotSentError` (the request never reached the provider: safe to retry) and
  :class:`ZhenziMaybeSentError` (it may have been processed: ask ``findSmsByMessageId`` first).

No error keeps the request (its body holds the app secret): only the endpoint, the HTTP status and
the answer's text, with the secret removed should the answer ever echo it.

Every error also says what went wrong as plain data: ``kind`` (a string) and ``params`` (a dict
of JSON values). The Django side stores them and renders them in the reader's language from its
catalogue (``django_zhenzi.reasons``); the error's own text stays English, for code and logs.
``"other"`` is the kind of an error with no shape of its own: its params hold its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class ErrorCode:
    """What a provider error code means, in English and Chinese, and whether a retry can help."""

    code: int
    meaning: str
    meaning_zh: str
    hint: str
    hint_zh: str
    retryable: bool


ERROR_CODES: dict[int, ErrorCode] = {
    error.code: error
    for error in (
        ErrorCode(
            100,
            "Parameter format error",
            "参数格式错误",
            "A field is empty, or the phone number is malformed.",
            "检查请求参数是否为空，或手机号码格式错误。",
            False,
        ),
        ErrorCode(
            101,
            "Message longer than 1000 characters",
            "短信内容超过1000字",
            "Shorten the message or split it into several.",
            "短信内容过长，请筛选或分多次发送。",
            False,
        ),
        ErrorCode(
            105,
            "Wrong appId, or the app does not exist",
            "appId错误或应用不存在",
            "Check ZHENZI['APP_ID'] against the app's details in the Zhenzi console.",
            "请检查 appId 是否输入错误，或联系工作人员申请应用。",
            False,
        ),
        ErrorCode(
            106,
            "The app is disabled",
            "应用被禁止",
            "Ask Zhenzi support why the app was disabled.",
            "请联系工作人员查看原因。",
            False,
        ),
        ErrorCode(
            107,
            "This server's IP address is not allowed",
            "IP错误",
            "Add this server's public IP to the app's IP whitelist in the console, or turn the "
            "whitelist off.",
            "如果设置了IP白名单，请将本服务器的IP地址加入白名单。",
            False,
        ),
        ErrorCode(
            108,
            "Balance insufficient",
            "短信余额不足",
            "Top up the account in the Zhenzi console; retrying helps after a top-up.",
            "需要到用户中心进行充值。",
            True,
        ),
        ErrorCode(
            109,
            "Daily limit for this number reached",
            "今日发送超过限额",
            "The console caps how many messages one number may receive per day.",
            "每个接收号码每日接收数量不得超过设置的限额。",
            False,
        ),
        ErrorCode(
            110,
            "Wrong appSecret",
            "应用秘钥(AppSecret)错误",
            "Check ZHENZI['APP_SECRET']; it changes when the secret is reset in the console.",
            "检查 AppSecret 是否输入错误，或是否已在用户中心进行了秘钥重置。",
            False,
        ),
        ErrorCode(
            111,
            "The account does not exist",
            "账号不存在",
            "Ask Zhenzi support to open an account.",
            "请联系工作人员申请账号。",
            False,
        ),
        ErrorCode(
            117,
            "Wrong templateId, or the template is not approved",
            "模板ID错误或模板未审核通过",
            "Check the template id and its approval status in the Zhenzi console.",
            "请检查模板ID及其审核状态。",
            False,
        ),
        ErrorCode(
            1000,
            "Unknown system error at the provider",
            "系统未知错误",
            "Usually passes; retry later, and contact Zhenzi support if it persists.",
            "请稍后重试，如持续出现请联系工作人员。",
            True,
        ),
    )
}


#: Errors about the account or app, not the message: every further request gets them too.
ACCOUNT_ERROR_CODES = frozenset({105, 106, 107, 110, 111})


def explain(code: int) -> ErrorCode:
    """The explanation of a provider error code; unknown codes get a generic one."""
    try:
        return ERROR_CODES[code]
    except KeyError:
        return ErrorCode(
            code,
            "Error not documented by the provider",
            "未知错误码",
            "See the provider's text in the error; contact Zhenzi support if it persists.",
            "请查看错误信息，如持续出现请联系工作人员。",
            False,
        )


class ZhenziError(Exception):
    """Base class of every error raised about talking to Zhenzi."""

    #: Whether sending the same request again later can succeed without a person's help.
    retryable: bool = False

    def __init__(
        self, *args: Any, kind: str = "other", params: dict[str, Any] | None = None
    ) -> None:
        super().__init__(*args)
        self.kind = kind
        if params is None:
            params = {"text": str(self)} if kind == "other" else {}
        self.params = params


class ZhenziInputError(ZhenziError, ValueError):
    """Input refused before any HTTP call (bad number, empty message, ...).

    ``field`` names the input; ``character`` is the refused character when one character is
    the reason (a control character or a lone surrogate), else None.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        character: str | None = None,
        kind: str = "other",
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, kind=kind, params=params)
        self.field = field
        self.character = character


class ZhenziAPIError(ZhenziError):
    """The provider answered with a non-zero ``code``; ``data`` is its own (Chinese) text."""

    def __init__(self, code: int, data: Any, *, endpoint: str) -> None:
        self.code = code
        self.data = data
        self.endpoint = endpoint
        self.explanation = explain(code)
        self.retryable = self.explanation.retryable
        super().__init__(
            f"Zhenzi error {code} on {endpoint}: {self.explanation.meaning} "
            f"({self.explanation.meaning_zh}; provider said: {data!r}). {self.explanation.hint}",
            kind="duplicate_message_id" if self.duplicate_message_id else "provider_error",
            params={"code": code, "endpoint": endpoint, "answer": repr(data)},
        )

    @property
    def duplicate_message_id(self) -> bool:
        """Whether the provider refused the request because its messageId was used before.

        Zhenzi's document only says a messageId "cannot repeat"; the refusal's wording is not
        published. This assumes code 100 with a text naming the messageId and a repeat
        (``messageId重复``, as the sandbox answers): proof that an earlier attempt arrived.
        """
        text = str(self.data).lower()
        return (
            self.code == 100
            and "messageid" in text
            and any(word in text for word in ("重复", "repeat", "duplicate", "exist"))
        )

    @property
    def hint(self) -> str:
        return self.explanation.hint

    @property
    def hint_zh(self) -> str:
        return self.explanation.hint_zh


class ZhenziTransportError(ZhenziError, requests.RequestException):
    """No usable answer from the provider. The wrapped error, if any, is ``__cause__``."""

    #: True when the provider may have processed the request (and so may have sent the SMS).
    maybe_sent: bool = True

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status_code: int | None = None,
        body: str = "",
        kind: str = "other",
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, kind=kind, params=params)
        self.endpoint = endpoint
        self.status_code = status_code
        self.body = body


class ZhenziNotSentError(ZhenziTransportError):
    """The request never reached the provider (connection refused, DNS, connect timeout...)."""

    maybe_sent = False
    retryable = True


class ZhenziMaybeSentError(ZhenziTransportError):
    """The request may have been processed (read timeout, HTTP 5xx, cut connection, bad body).

    Never resend blindly: look the message up with ``findSmsByMessageId`` first.
    """

    maybe_sent = True
    retryable = False
