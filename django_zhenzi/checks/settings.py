"""Checks of the ZHENZI dict: its type and keys, the account, transport, queue and callback
settings (E001-E011, W001)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from django_zhenzi.checks.base import (
    GENERATE_TOKEN_COMMAND,
    TAG,
    WRONG_TYPE,
    setting_key,
    setting_value,
    zhenzi_check,
)
from django_zhenzi.conf import (
    ENTERPRISE_API_URL,
    MIN_CALLBACK_TOKEN_LENGTH,
    PERSONAL_API_URL,
    SETTINGS,
    ZHENZI_BACKEND,
    Setting,
    is_loopback,
)


@register(TAG)
def check_zhenzi_is_dict(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E001: ZHENZI is not a dict (then no other check runs)."""
    config = getattr(settings, "ZHENZI", {})
    if isinstance(config, dict):
        return []
    return [
        Error(
            format_lazy(
                _("The ZHENZI setting must be a dict, not {type}."), type=type(config).__name__
            ),
            hint=_(
                'Write it as ZHENZI = {"APP_ID": ..., "APP_SECRET": ...} in your settings, '
                "or leave it out to use the defaults."
            ),
            id="django_zhenzi.E001",
        )
    ]


@zhenzi_check()
def check_unknown_keys(config: dict[str, Any]) -> list[CheckMessage]:
    """E002 for each key that is not a known setting, most likely a typo."""
    return [
        Error(
            format_lazy(_("{key} is not a known setting."), key=setting_key(key)),
            hint=_closest_key_hint(key),
            id="django_zhenzi.E002",
        )
        for key in config
        if key not in SETTINGS
    ]


def _closest_key_hint(key: object) -> Promise:
    matches = difflib.get_close_matches(key, SETTINGS, n=1) if isinstance(key, str) else []
    if matches:
        return format_lazy(_("Did you mean {key}?"), key=setting_key(matches[0]))
    return format_lazy(_("The known keys are: {keys}."), keys=", ".join(SETTINGS))


@zhenzi_check()
def check_types(config: dict[str, Any]) -> list[CheckMessage]:
    """E003 for each known key whose value has a type the registry does not accept."""
    return [
        Error(
            format_lazy(
                _("{key} must be {expected}, not {actual}."),
                key=setting_key(name),
                expected=_expected_types(SETTINGS[name]),
                actual=_actual_type(value),
            ),
            hint=format_lazy(
                _("Give {key} a value of type {expected}, or leave it out to use the default."),
                key=setting_key(name),
                expected=_expected_types(SETTINGS[name]),
            ),
            id="django_zhenzi.E003",
        )
        for name, value in config.items()
        if name in SETTINGS and not SETTINGS[name].accepts(value)
    ]


def _expected_types(setting: Setting) -> str:
    """The accepted types, written like a type hint: ``str | list[str] | tuple[str, ...]``."""
    items = " | ".join(item_type.__name__ for item_type in setting.item_types)
    containers = {list: f"list[{items}]", tuple: f"tuple[{items}, ...]"} if items else {}
    return " | ".join(containers.get(type_, type_.__name__) for type_ in setting.types)


def _actual_type(value: object) -> str:
    """The type of ``value`` (never the value: it may be a secret), with item types for a list."""
    if isinstance(value, (list, tuple)) and value:
        item_types = dict.fromkeys(type(item).__name__ for item in value)
        return f"{type(value).__name__}[{' | '.join(item_types)}]"
    return type(value).__name__


def _is_missing_for_zhenzi_backend(config: dict[str, Any], name: str) -> bool:
    """Whether the credential ``name`` is empty while the real Zhenzi backend is selected."""
    value = setting_value(config, name)
    if value is WRONG_TYPE or setting_value(config, "BACKEND") != ZHENZI_BACKEND:
        return False
    return not value.strip()


@zhenzi_check()
def check_app_id(config: dict[str, Any]) -> list[CheckMessage]:
    """E004: no appId for the real backend."""
    if not _is_missing_for_zhenzi_backend(config, "APP_ID"):
        return []
    return [
        Error(
            _("ZHENZI['APP_ID'] is empty, but the Zhenzi backend needs it to send messages."),
            hint=_(
                "Set ZHENZI['APP_ID'] to your app's appId from the Zhenzi console (read it from "
                "the environment), or choose another ZHENZI['BACKEND'] for development."
            ),
            id="django_zhenzi.E004",
        )
    ]


@zhenzi_check(Tags.security)
def check_app_secret(config: dict[str, Any]) -> list[CheckMessage]:
    """E005: no appSecret for the real backend. The messages never show the secret."""
    if not _is_missing_for_zhenzi_backend(config, "APP_SECRET"):
        return []
    return [
        Error(
            _("ZHENZI['APP_SECRET'] is empty, but the Zhenzi backend needs it to send messages."),
            hint=_(
                "Set ZHENZI['APP_SECRET'] to your app's appSecret from the Zhenzi console, read "
                "from the environment (never commit it), or choose another ZHENZI['BACKEND'] for "
                "development."
            ),
            id="django_zhenzi.E005",
        )
    ]


def _split_http_url(url: str) -> SplitResult | None:
    """``url`` split into parts if it is an absolute http(s) URL with a host and a valid port."""
    try:
        parts = urlsplit(url)
        is_http_url = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, or a malformed IPv6 address
        return None
    return parts if is_http_url else None


@zhenzi_check()
def check_api_url(config: dict[str, Any]) -> list[CheckMessage]:
    """E006: API_URL is not an absolute http(s) URL."""
    url = setting_value(config, "API_URL")
    if url is WRONG_TYPE or _split_http_url(url):
        return []
    return [
        Error(
            format_lazy(
                _("ZHENZI['API_URL'] must be an absolute http(s) URL with a host, not {url}."),
                url=repr(url),
            ),
            hint=format_lazy(
                _(
                    "Use {personal} (personal developers, the default), {enterprise} (enterprise "
                    "accounts), or a local sandbox such as http://127.0.0.1:8086."
                ),
                personal=PERSONAL_API_URL,
                enterprise=ENTERPRISE_API_URL,
            ),
            id="django_zhenzi.E006",
        )
    ]


@zhenzi_check(Tags.security)
def check_api_url_uses_https(config: dict[str, Any]) -> list[CheckMessage]:
    """E007: appId and appSecret travel as plain form fields, so only HTTPS may leave the host."""
    url = setting_value(config, "API_URL")
    parts = None if url is WRONG_TYPE else _split_http_url(url)
    if parts is None or parts.scheme == "https" or is_loopback(parts.hostname):
        return []
    return [
        Error(
            format_lazy(
                _(
                    "ZHENZI['API_URL'] uses plain http to {host}, so the appId and appSecret "
                    "sent with every request could be read on the way."
                ),
                host=parts.hostname,
            ),
            hint=format_lazy(
                _(
                    "Use https, as {personal} and {enterprise} do. Plain http is allowed only to "
                    "this machine (localhost, 127.0.0.0/8, ::1), e.g. for a local sandbox."
                ),
                personal=PERSONAL_API_URL,
                enterprise=ENTERPRISE_API_URL,
            ),
            id="django_zhenzi.E007",
        )
    ]


@zhenzi_check()
def check_positive_numbers(config: dict[str, Any]) -> list[CheckMessage]:
    """E008: a numeric setting (TIMEOUT, MAX_ATTEMPTS, the delays) is not positive (NaN too)."""
    errors: list[CheckMessage] = []
    for name, setting in SETTINGS.items():
        if int not in setting.types:
            continue
        value = setting_value(config, name)
        if value is WRONG_TYPE or value > 0:
            continue
        errors.append(
            Error(
                format_lazy(
                    _("{key} must be a positive number, not {value}."),
                    key=setting_key(name),
                    value=value,
                ),
                hint=format_lazy(
                    _("Set a number above 0, or leave it out for the default ({default})."),
                    default=setting.default,
                ),
                id="django_zhenzi.E008",
            )
        )
    return errors


def _with_timeout(config: dict[str, Any], name: str) -> tuple[Any, Any] | None:
    """``(config[name], config["TIMEOUT"])`` when both are positive numbers; None otherwise
    (E003 or E008 already says what is wrong)."""
    value, timeout = setting_value(config, name), setting_value(config, "TIMEOUT")
    if WRONG_TYPE in (value, timeout) or not (timeout > 0 and value > 0):
        return None
    return value, timeout


@zhenzi_check()
def check_claim_timeout(config: dict[str, Any]) -> list[CheckMessage]:
    """E010: CLAIM_TIMEOUT must exceed TIMEOUT, or live workers would be taken for dead ones."""
    values = _with_timeout(config, "CLAIM_TIMEOUT")
    if values is None or values[0] > 2 * values[1]:
        return []
    claim_timeout, timeout = values
    return [
        Error(
            format_lazy(
                _(
                    "ZHENZI['CLAIM_TIMEOUT'] ({claim_timeout} s) must be more than twice "
                    "ZHENZI['TIMEOUT'] ({timeout} s)."
                ),
                claim_timeout=claim_timeout,
                timeout=timeout,
            ),
            hint=_(
                "A claim older than CLAIM_TIMEOUT is taken for a dead worker's; if a request can "
                "still be in flight then, a message could be sent twice."
            ),
            id="django_zhenzi.E010",
        )
    ]


@zhenzi_check()
def check_reconcile_settle(config: dict[str, Any]) -> list[CheckMessage]:
    """E011: RECONCILE_SETTLE must leave the provider time to record a late request."""
    values = _with_timeout(config, "RECONCILE_SETTLE")
    if values is None or values[0] >= 3 * values[1]:
        return []
    settle, timeout = values
    return [
        Error(
            format_lazy(
                _(
                    "ZHENZI['RECONCILE_SETTLE'] ({settle} s) must be at least three times "
                    "ZHENZI['TIMEOUT'] ({timeout} s)."
                ),
                settle=settle,
                timeout=timeout,
            ),
            hint=_(
                "A request whose answer timed out may still be processed by the provider; a "
                "message it has not recorded yet would be sent a second time. Minutes are safe."
            ),
            id="django_zhenzi.E011",
        )
    ]


@zhenzi_check(Tags.security)
def check_callback_token_length(config: dict[str, Any]) -> list[CheckMessage]:
    """E009 for each token too short to resist guessing; names its position, never the token."""
    tokens = setting_value(config, "CALLBACK_TOKEN")
    if tokens is WRONG_TYPE:
        return []
    if isinstance(tokens, str):
        short_keys = (
            [setting_key("CALLBACK_TOKEN")] if 0 < len(tokens) < MIN_CALLBACK_TOKEN_LENGTH else []
        )
    else:
        short_keys = [
            setting_key("CALLBACK_TOKEN", index)
            for index, token in enumerate(tokens)
            if len(token) < MIN_CALLBACK_TOKEN_LENGTH
        ]
    return [
        Error(
            format_lazy(
                _("{key} is shorter than {length} characters, so it could be guessed."),
                key=key,
                length=MIN_CALLBACK_TOKEN_LENGTH,
            ),
            hint=format_lazy(
                _("Generate a long random token with: {command}"), command=GENERATE_TOKEN_COMMAND
            ),
            id="django_zhenzi.E009",
        )
        for key in short_keys
    ]


@zhenzi_check(Tags.security)
def check_callback_token_set(config: dict[str, Any]) -> list[CheckMessage]:
    """W001: no callback token, so the callback view refuses every delivery report."""
    tokens = setting_value(config, "CALLBACK_TOKEN")
    if tokens is WRONG_TYPE or tokens:
        return []
    return [
        CheckWarning(
            _(
                "ZHENZI['CALLBACK_TOKEN'] is not set, so the delivery-report callback will refuse "
                "every report."
            ),
            hint=format_lazy(
                _(
                    "Put a long random token in ZHENZI['CALLBACK_TOKEN'] (generate one with: "
                    "{command}) and give Zhenzi the callback URL that contains it."
                ),
                command=GENERATE_TOKEN_COMMAND,
            ),
            id="django_zhenzi.W001",
        )
    ]
