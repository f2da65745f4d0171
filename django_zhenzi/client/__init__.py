"""The Zhenzi Cloud SMS API client: plain HTTP, no Django.

>>> client = ZhenziClient("https://sms_developer.zhenzikj.com", app_id, app_secret, timeout=10)
>>> client.send("13800138000", "【签名】您的订单已发货", message_id="...")
"""

from django_zhenzi.client.api import (
    BALANCE_PATH,
    CHINA_TZ,
    FIND_MESSAGE_PATH,
    SEND_PATH,
    SEND_TEMPLATE_PATH,
    USER_AGENT,
    SmsRecord,
    ZhenziAnswer,
    ZhenziClient,
    mask_number,
    parse_china_time,
)
from django_zhenzi.client.errors import (
    ACCOUNT_ERROR_CODES,
    ERROR_CODES,
    ErrorCode,
    ZhenziAPIError,
    ZhenziError,
    ZhenziInputError,
    ZhenziMaybeSentError,
    ZhenziNotSentError,
    ZhenziTransportError,
    explain,
)
from django_zhenzi.client.validation import (
    MAX_MESSAGE_LENGTH,
    message_length,
    normalize_number,
    validate_client_ip,
    validate_message,
    validate_message_id,
    validate_template_id,
    validate_template_params,
)

__all__ = [
    "ACCOUNT_ERROR_CODES",
    "BALANCE_PATH",
    "CHINA_TZ",
    "ERROR_CODES",
    "FIND_MESSAGE_PATH",
    "MAX_MESSAGE_LENGTH",
    "SEND_PATH",
    "SEND_TEMPLATE_PATH",
    "USER_AGENT",
    "ErrorCode",
    "SmsRecord",
    "ZhenziAPIError",
    "ZhenziAnswer",
    "ZhenziClient",
    "ZhenziError",
    "ZhenziInputError",
    "ZhenziMaybeSentError",
    "ZhenziNotSentError",
    "ZhenziTransportError",
    "explain",
    "mask_number",
    "message_length",
    "normalize_number",
    "parse_china_time",
    "validate_client_ip",
    "validate_message",
    "validate_message_id",
    "validate_template_id",
    "validate_template_params",
]
