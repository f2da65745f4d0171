"""Checks of the verification code and abuse limit settings (E020-E029, W020-W029)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.checks import Warning as CheckWarning
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from django_zhenzi.checks.base import WRONG_TYPE, setting_key, setting_value, zhenzi_check
from django_zhenzi.code_rules import MAX_CODE_LENGTH, MIN_CODE_LENGTH, code_message_is_valid


@zhenzi_check()
def check_code_length(config: dict[str, Any]) -> list[CheckMessage]:
    """E020: a code too short to resist guessing, or longer than anyone wants to type."""
    length = setting_value(config, "CODE_LENGTH")
    if length is WRONG_TYPE or length <= 0 or MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        return []  # E003 or E008 already says what is wrong with a non-positive length
    return [
        Error(
            format_lazy(
                _("ZHENZI['CODE_LENGTH'] must be between {low} and {high}, not {length}."),
                low=MIN_CODE_LENGTH,
                high=MAX_CODE_LENGTH,
                length=length,
            ),
            hint=_("Six digits (the default) is what users expect."),
            id="django_zhenzi.E020",
        )
    ]


@zhenzi_check()
def check_code_message(config: dict[str, Any]) -> list[CheckMessage]:
    """E021: CODE_MESSAGE lacks {code}, has another placeholder, or an unmatched brace."""
    text = setting_value(config, "CODE_MESSAGE")
    if text is WRONG_TYPE or not text or code_message_is_valid(text):
        return []
    return [
        Error(
            _(
                "ZHENZI['CODE_MESSAGE'] must contain {code} and no placeholder other than {code} "
                "and {minutes}."
            ),
            hint=_(
                "For example: '【签名】您的验证码是{code}，{minutes}分钟内有效。' "
                "(write a literal brace as {{ or }})."
            ),
            id="django_zhenzi.E021",
        )
    ]


@zhenzi_check()
def check_code_content_is_single(config: dict[str, Any]) -> list[CheckMessage]:
    """E022: both a code template and a code text: a message is one or the other."""
    template_id = setting_value(config, "CODE_TEMPLATE_ID")
    text = setting_value(config, "CODE_MESSAGE")
    if WRONG_TYPE in (template_id, text) or not (template_id and text):
        return []
    return [
        Error(
            _("ZHENZI['CODE_TEMPLATE_ID'] and ZHENZI['CODE_MESSAGE'] are both set."),
            hint=_(
                "Keep CODE_TEMPLATE_ID to send codes with a console template (filled with "
                "[code, minutes]), or CODE_MESSAGE to send them as free text; remove the other."
            ),
            id="django_zhenzi.E022",
        )
    ]


@zhenzi_check()
def check_limit_windows(config: dict[str, Any]) -> list[CheckMessage]:
    """W020: a cap over a short window above the cap over the longer one has no effect."""
    warnings: list[CheckMessage] = []
    for short, long in (
        ("LIMIT_NUMBER_PER_HOUR", "LIMIT_NUMBER_PER_DAY"),
        ("LIMIT_SITE_PER_MINUTE", "LIMIT_SITE_PER_DAY"),
    ):
        short_cap, long_cap = setting_value(config, short), setting_value(config, long)
        if WRONG_TYPE in (short_cap, long_cap) or short_cap <= long_cap:
            continue
        warnings.append(
            CheckWarning(
                format_lazy(
                    _("{short} ({short_cap}) is above {long} ({long_cap}), so it has no effect."),
                    short=setting_key(short),
                    short_cap=short_cap,
                    long=setting_key(long),
                    long_cap=long_cap,
                ),
                hint=format_lazy(
                    _("Set {short} below {long}."), short=setting_key(short), long=setting_key(long)
                ),
                id="django_zhenzi.W020",
            )
        )
    return warnings
