"""The provider's rules the sandbox applies: error texts, field formats, cost and time formats."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

SEND_PATH = "/sms/send.do"
TEMPLATE_SEND_PATH = "/sms/v2/send.do"
BALANCE_PATH = "/account/balance.do"
FIND_PATH = "/smslog/findSmsByMessageId.do"
API_PATHS = (SEND_PATH, TEMPLATE_SEND_PATH, BALANCE_PATH, FIND_PATH)
SEND_PATHS = frozenset((SEND_PATH, TEMPLATE_SEND_PATH))
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

SUCCESS_TEXT = "发送成功"
DUPLICATE_MESSAGE_ID_TEXT = "messageId重复"
ERROR_TEXTS = {
    100: "参数格式错误",
    101: "短信内容超过1000字",
    105: "appId错误或应用不存在",
    106: "应用被禁止",
    107: "ip错误",
    108: "短信余额不足",
    109: "今日发送超过限额",
    110: "应用秘钥(AppSecret)错误",
    117: "templateId错误或模板未审核",
    1000: "系统未知错误",
}

MAX_MESSAGE_LENGTH = 1000
SINGLE_SEGMENT_LENGTH = 70
MULTI_SEGMENT_LENGTH = 67  # each part of a long SMS loses 3 characters to the concatenation header
MOBILE_NUMBER = re.compile(r"1[3-9][0-9]{9}")  # [0-9], not \d: \d also matches non-ASCII digits

CHINA_TZ = timezone(timedelta(hours=8), "CST")
PLACEHOLDER = re.compile(r"\{([0-9]+)\}")


def error(code: int) -> dict[str, object]:
    """The provider's answer for an error code."""
    return {"code": code, "data": ERROR_TEXTS[code]}


def is_mobile_number(number: str) -> bool:
    """Whether ``number`` is exactly one mainland mobile number."""
    return MOBILE_NUMBER.fullmatch(number) is not None


def segment_count(message: str) -> int:
    """How many SMS the provider charges for ``message``."""
    if len(message) <= SINGLE_SEGMENT_LENGTH:
        return 1
    return -(-len(message) // MULTI_SEGMENT_LENGTH)


def china_time(epoch: float) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in China time (UTC+8), the provider's time format."""
    return datetime.fromtimestamp(epoch, CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def parse_template_params(raw: str) -> list[str] | None:
    """The ``templateParams`` field (a JSON array of strings), or None when malformed.

    An absent or empty field means no parameters.
    """
    if not raw:
        return []
    try:
        params = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(params, list) or not all(isinstance(param, str) for param in params):
        return None
    return params


@dataclass(frozen=True)
class Template:
    """An approved template: text with placeholders ``{1}``, ``{2}``... filled in order."""

    text: str
    placeholder_count: int

    @classmethod
    def parse(cls, text: str) -> Template:
        """Check that the placeholders are numbered ``{1}`` to ``{n}`` without gaps."""
        numbers = {int(number) for number in PLACEHOLDER.findall(text)}
        if numbers != set(range(1, len(numbers) + 1)):
            raise ValueError(f"template placeholders must be {{1}}..{{n}} without gaps: {text!r}")
        return cls(text, len(numbers))

    def fill(self, params: list[str]) -> str:
        """The text with each ``{i}`` replaced by ``params[i - 1]``."""
        return PLACEHOLDER.sub(lambda match: params[int(match.group(1)) - 1], self.text)
