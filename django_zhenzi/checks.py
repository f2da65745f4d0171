"""System checks for ``settings.ZHENZI``: one small function per rule, each with its own id.

E001 checks that ``ZHENZI`` is a dict; every other check only runs when it is. E003 checks the
type of every key against the ``conf.SETTINGS`` registry, so a new key needs no new type check; the
other checks read a key through ``_value``, which hides a wrongly typed value so each mistake is
reported once.
Check ids are documented in the README: never reuse or renumber one.
"""

from __future__ import annotations

import difflib
import functools
import json
import string
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import connections, router
from django.utils.connection import ConnectionDoesNotExist
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from django_zhenzi.conf import (
    ENTERPRISE_API_URL,
    MIN_CALLBACK_TOKEN_LENGTH,
    PERSONAL_API_URL,
    SETTINGS,
    ZHENZI_BACKEND,
    Setting,
    is_loopback,
)

TAG = "django_zhenzi"
"""The tag of every check here: ``manage.py check --tag django_zhenzi``."""

GENERATE_TOKEN_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'  # noqa: S105

_WRONG_TYPE = object()
"""What ``_value`` gives for a value of the wrong type (E003 reports it, other checks skip it)."""

_ConfigCheck = Callable[[dict[str, Any]], list[CheckMessage]]
_DjangoCheck = Callable[..., list[CheckMessage]]


def _zhenzi_check(*tags: str) -> Callable[[_ConfigCheck], _DjangoCheck]:
    """Register a check of the ``ZHENZI`` dict, run only when ``ZHENZI`` is a dict (else E001)."""

    def decorator(check: _ConfigCheck) -> _DjangoCheck:
        @functools.wraps(check)
        def run(
            app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
        ) -> list[CheckMessage]:
            config = getattr(settings, "ZHENZI", {})
            return check(config) if isinstance(config, dict) else []

        del run.__wrapped__  # Django inspects the signature: it must be run's, with **kwargs
        return register(run, TAG, *tags)

    return decorator


def _value(config: dict[str, Any], name: str) -> Any:
    """The value of ``name`` (its default when absent), or ``_WRONG_TYPE``."""
    setting = SETTINGS[name]
    value = config.get(name, setting.default)
    return value if setting.accepts(value) else _WRONG_TYPE


def _key(name: object, index: int | None = None) -> str:
    """How messages name a setting: ``ZHENZI['TIMEOUT']``, or one item: ``ZHENZI['X'][1]``."""
    return f"ZHENZI[{name!r}]" if index is None else f"ZHENZI[{name!r}][{index}]"


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


@_zhenzi_check()
def check_unknown_keys(config: dict[str, Any]) -> list[CheckMessage]:
    """E002 for each key that is not a known setting, most likely a typo."""
    return [
        Error(
            format_lazy(_("{key} is not a known setting."), key=_key(key)),
            hint=_closest_key_hint(key),
            id="django_zhenzi.E002",
        )
        for key in config
        if key not in SETTINGS
    ]


def _closest_key_hint(key: object) -> Promise:
    matches = difflib.get_close_matches(key, SETTINGS, n=1) if isinstance(key, str) else []
    if matches:
        return format_lazy(_("Did you mean {key}?"), key=_key(matches[0]))
    return format_lazy(_("The known keys are: {keys}."), keys=", ".join(SETTINGS))


@_zhenzi_check()
def check_types(config: dict[str, Any]) -> list[CheckMessage]:
    """E003 for each known key whose value has a type the registry does not accept."""
    return [
        Error(
            format_lazy(
                _("{key} must be {expected}, not {actual}."),
                key=_key(name),
                expected=_expected_types(SETTINGS[name]),
                actual=_actual_type(value),
            ),
            hint=format_lazy(
                _("Give {key} a value of type {expected}, or leave it out to use the default."),
                key=_key(name),
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
    value = _value(config, name)
    if value is _WRONG_TYPE or _value(config, "BACKEND") != ZHENZI_BACKEND:
        return False
    return not value.strip()


@_zhenzi_check()
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


@_zhenzi_check(Tags.security)
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


@_zhenzi_check()
def check_api_url(config: dict[str, Any]) -> list[CheckMessage]:
    """E006: API_URL is not an absolute http(s) URL."""
    url = _value(config, "API_URL")
    if url is _WRONG_TYPE or _split_http_url(url):
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


@_zhenzi_check(Tags.security)
def check_api_url_uses_https(config: dict[str, Any]) -> list[CheckMessage]:
    """E007: appId and appSecret travel as plain form fields, so only HTTPS may leave the host."""
    url = _value(config, "API_URL")
    parts = None if url is _WRONG_TYPE else _split_http_url(url)
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


@_zhenzi_check()
def check_positive_numbers(config: dict[str, Any]) -> list[CheckMessage]:
    """E008: a numeric setting (TIMEOUT, MAX_ATTEMPTS, the delays) is not positive (NaN too)."""
    errors: list[CheckMessage] = []
    for name, setting in SETTINGS.items():
        if int not in setting.types:
            continue
        value = _value(config, name)
        if value is _WRONG_TYPE or value > 0:
            continue
        errors.append(
            Error(
                format_lazy(
                    _("{key} must be a positive number, not {value}."),
                    key=_key(name),
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
    value, timeout = _value(config, name), _value(config, "TIMEOUT")
    if _WRONG_TYPE in (value, timeout) or not (timeout > 0 and value > 0):
        return None
    return value, timeout


@_zhenzi_check()
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


@_zhenzi_check()
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


@_zhenzi_check(Tags.security)
def check_callback_token_length(config: dict[str, Any]) -> list[CheckMessage]:
    """E009 for each token too short to resist guessing; names its position, never the token."""
    tokens = _value(config, "CALLBACK_TOKEN")
    if tokens is _WRONG_TYPE:
        return []
    if isinstance(tokens, str):
        short_keys = [_key("CALLBACK_TOKEN")] if 0 < len(tokens) < MIN_CALLBACK_TOKEN_LENGTH else []
    else:
        short_keys = [
            _key("CALLBACK_TOKEN", index)
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


@_zhenzi_check(Tags.security)
def check_callback_token_set(config: dict[str, Any]) -> list[CheckMessage]:
    """W001: no callback token, so the callback view refuses every delivery report."""
    tokens = _value(config, "CALLBACK_TOKEN")
    if tokens is _WRONG_TYPE or tokens:
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


# --- Verification codes and abuse limits (E020-E029, W020-W029) ---------------------------------

MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 10
CODE_PLACEHOLDERS = frozenset({"code", "minutes"})


def code_message_is_valid(text: str) -> bool:
    """Whether ``text`` is a format string with ``{code}`` and no placeholder but ``{code}`` and
    ``{minutes}``."""
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError:  # an unmatched brace
        return False
    return "code" in fields and fields <= CODE_PLACEHOLDERS


@_zhenzi_check()
def check_code_length(config: dict[str, Any]) -> list[CheckMessage]:
    """E020: a code too short to resist guessing, or longer than anyone wants to type."""
    length = _value(config, "CODE_LENGTH")
    if length is _WRONG_TYPE or length <= 0 or MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
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


@_zhenzi_check()
def check_code_message(config: dict[str, Any]) -> list[CheckMessage]:
    """E021: CODE_MESSAGE lacks {code}, has another placeholder, or an unmatched brace."""
    text = _value(config, "CODE_MESSAGE")
    if text is _WRONG_TYPE or not text or code_message_is_valid(text):
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


@_zhenzi_check()
def check_code_content_is_single(config: dict[str, Any]) -> list[CheckMessage]:
    """E022: both a code template and a code text: a message is one or the other."""
    template_id = _value(config, "CODE_TEMPLATE_ID")
    text = _value(config, "CODE_MESSAGE")
    if _WRONG_TYPE in (template_id, text) or not (template_id and text):
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


@_zhenzi_check()
def check_limit_windows(config: dict[str, Any]) -> list[CheckMessage]:
    """W020: a cap over a short window above the cap over the longer one has no effect."""
    warnings: list[CheckMessage] = []
    for short, long in (
        ("LIMIT_NUMBER_PER_HOUR", "LIMIT_NUMBER_PER_DAY"),
        ("LIMIT_SITE_PER_MINUTE", "LIMIT_SITE_PER_DAY"),
    ):
        short_cap, long_cap = _value(config, short), _value(config, long)
        if _WRONG_TYPE in (short_cap, long_cap) or short_cap <= long_cap:
            continue
        warnings.append(
            CheckWarning(
                format_lazy(
                    _("{short} ({short_cap}) is above {long} ({long_cap}), so it has no effect."),
                    short=_key(short),
                    short_cap=short_cap,
                    long=_key(long),
                    long_cap=long_cap,
                ),
                hint=format_lazy(
                    _("Set {short} below {long}."), short=_key(short), long=_key(long)
                ),
                id="django_zhenzi.W020",
            )
        )
    return warnings


# --- The database (E030-E039, W030-W039) ---------------------------------------------------------

SQLITE_LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})
"""SQLite transaction modes that take the write lock when the transaction begins."""

SQLITE_BUSY_TIMEOUT = 20
"""The busy timeout (seconds) W030's hint suggests when the database sets none."""


@register(TAG)
def check_sqlite_transaction_mode(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W030: the messages' database is SQLite with DEFERRED transactions (the default)."""
    alias = router.db_for_write(apps.get_model("django_zhenzi", "Message"))
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        return []  # Django itself reports a router that names an unknown database
    return sqlite_transaction_mode_warnings(alias, connection.vendor, connection.settings_dict)


def sqlite_transaction_mode_warnings(
    alias: str, vendor: str, database: dict[str, Any]
) -> list[CheckMessage]:
    """W030 for the database ``alias`` (``DATABASES[alias]`` is ``database``) when it is SQLite
    and its transactions are DEFERRED. A deferred transaction that has read and then writes fails
    at once with "database is locked" when another process holds the write lock: it cannot wait
    (the busy timeout does not apply), so a worker and the site writing at once make each other
    fail. IMMEDIATE (or EXCLUSIVE) transactions take the lock when they begin, waiting for it."""
    options = database.get("OPTIONS") or {}
    mode = options.get("transaction_mode") or "DEFERRED"
    if vendor != "sqlite" or (isinstance(mode, str) and mode.upper() in SQLITE_LOCKING_MODES):
        return []
    suggested = {
        "transaction_mode": "IMMEDIATE",
        "timeout": options.get("timeout", SQLITE_BUSY_TIMEOUT),
    }
    return [
        CheckWarning(
            format_lazy(
                _(
                    "The database {alias} that stores the SMS messages is SQLite with {mode} "
                    "transactions, so a queue worker and the site writing at once can fail with "
                    '"database is locked".'
                ),
                alias=json.dumps(alias),
                mode=mode,
            ),
            hint=format_lazy(
                _(
                    "In DATABASES[{alias}], set {options} (keep any other options). Each "
                    'transaction then takes the write lock when it begins, waiting up to "timeout" '
                    "seconds for it instead of failing."
                ),
                alias=json.dumps(alias),
                options=f'"OPTIONS": {json.dumps(suggested, default=str)}',
            ),
            id="django_zhenzi.W030",
        )
    ]
