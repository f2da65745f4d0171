"""The one place django_zhenzi reads its settings.

Everything lives in one dict, ``settings.ZHENZI``. Values are read on every access, never cached,
so ``override_settings`` works. The package never reads the environment itself: projects do that in
their settings module (the example project and the test settings use django-environ).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

PERSONAL_API_URL = "https://sms_developer.zhenzikj.com"
ENTERPRISE_API_URL = "https://sms.zhenzikj.com"
ZHENZI_BACKEND = "django_zhenzi.backends.zhenzi.SmsBackend"
MIN_CALLBACK_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Setting:
    """One key of ``settings.ZHENZI``: its default, the types it accepts and what it means."""

    name: str
    default: Any
    types: tuple[type, ...]
    description: str
    item_types: tuple[type, ...] = ()
    """When not empty: the types every item of a list or tuple value must have."""

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has an accepted type (and, for a list or tuple, accepted items)."""
        if not _is_instance(value, self.types):
            return False
        if self.item_types and isinstance(value, (list, tuple)):
            return all(_is_instance(item, self.item_types) for item in value)
        return True


def _is_instance(value: Any, types: tuple[type, ...]) -> bool:
    """``isinstance`` that does not take ``True``/``False`` for numbers (bool subclasses int)."""
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("APP_ID", "", (str,), "The app's appId, from the Zhenzi console (应用详情)."),
        Setting(
            "APP_SECRET",
            "",
            (str,),
            "The app's appSecret, from the Zhenzi console. Never logged or shown.",
        ),
        Setting(
            "API_URL",
            PERSONAL_API_URL,
            (str,),
            "Base URL of the API: the personal-developer URL (default), the enterprise URL "
            f"{ENTERPRISE_API_URL}, or a sandbox's URL.",
        ),
        Setting(
            "BACKEND",
            ZHENZI_BACKEND,
            (str,),
            "Dotted path of the SMS backend class, like Django's EMAIL_BACKEND.",
        ),
        Setting(
            "TIMEOUT",
            10.0,
            (int, float),
            "Seconds to wait for the provider, for connecting and for each read.",
        ),
        Setting(
            "CALLBACK_TOKEN",
            "",
            (str, list, tuple),
            "Secret token(s) in the delivery-report URL; a list allows rotation "
            f"(at least {MIN_CALLBACK_TOKEN_LENGTH} characters each).",
            item_types=(str,),
        ),
        Setting(
            "CALLBACK_MAX_BODY",
            262144,
            (int,),
            "The largest delivery-report body the callback accepts, in bytes; larger ones are "
            "answered 413.",
        ),
        Setting(
            "MAX_ATTEMPTS",
            5,
            (int,),
            "How many times a message is tried before it is marked failed.",
        ),
        Setting(
            "RETRY_DELAY",
            30.0,
            (int, float),
            "Seconds before the first retry; each further retry waits twice as long (with "
            "jitter), up to RETRY_MAX_DELAY.",
        ),
        Setting(
            "RETRY_MAX_DELAY",
            3600.0,
            (int, float),
            "The longest wait between two attempts, in seconds.",
        ),
        Setting(
            "CLAIM_TIMEOUT",
            300.0,
            (int, float),
            "Seconds a worker may hold a message in 'sending'; past it the worker is taken for "
            "dead and the message is reconciled. Must be more than twice TIMEOUT.",
        ),
        Setting(
            "RECONCILE_DELAY",
            10.0,
            (int, float),
            "Seconds to wait after an ambiguous outcome before asking the provider whether the "
            "message arrived.",
        ),
        Setting(
            "RECONCILE_SETTLE",
            600.0,
            (int, float),
            "Seconds after an ambiguous outcome before the provider's 'not found' is believed "
            "and the message sent again; until then it is asked again. Must be at least three "
            "times TIMEOUT.",
        ),
        Setting(
            "STATUS_SYNC_AFTER",
            600.0,
            (int, float),
            "Seconds after sending before 'zhenzi_status --sync' asks the provider about a "
            "message that still has no delivery report.",
        ),
        Setting(
            "DISPATCH",
            "worker",
            (str,),
            "What sends queued messages: 'worker' (manage.py zhenzi_send_queued), 'celery' "
            "(Celery tasks) or 'tasks' (Django's Tasks framework).",
        ),
        Setting(
            "DISPATCH_QUEUES",
            {},
            (dict,),
            "With 'celery' or 'tasks': the queue name of each priority ('high', 'normal', "
            "'bulk'), e.g. {'high': 'sms-high'}; a priority left out goes to the engine's "
            "default queue.",
        ),
        Setting(
            "DISPATCH_BATCH_SIZE",
            20,
            (int,),
            "With 'celery' or 'tasks': the most messages one task sends (a bulk send becomes "
            "one task per this many, so several workers share it).",
        ),
        Setting(
            "TASKS_BACKEND",
            "default",
            (str,),
            "With 'tasks': the alias in settings.TASKS of the Tasks backend to enqueue on.",
        ),
        Setting(
            "LOW_BALANCE_THRESHOLD",
            100,
            (int,),
            "Below this many messages the admin's balance page warns, ADMINS get one email per "
            "crossing (signal balance_low) and zhenzi_health reports a problem.",
        ),
        Setting(
            "BALANCE_CACHE_SECONDS",
            60.0,
            (int, float),
            "Seconds the admin keeps a balance read from the provider (in Django's cache) "
            "before asking again.",
        ),
        Setting(
            "QUEUE_ALERT_AFTER",
            300.0,
            (int, float),
            "Seconds a due queued message may wait before zhenzi_health reports that no worker "
            "is taking the queue.",
        ),
        Setting(
            "REPORT_ALERT_AFTER",
            3600.0,
            (int, float),
            "Seconds after a message was sent without any delivery report arriving through the "
            "callback before zhenzi_health reports the callback as misconfigured.",
        ),
        Setting("CODE_LENGTH", 6, (int,), "Digits in a verification code (4 to 10)."),
        Setting(
            "CODE_TTL",
            300.0,
            (int, float),
            "Seconds a verification code stays valid; its message gives it in minutes.",
        ),
        Setting(
            "CODE_MAX_TRIES",
            5,
            (int,),
            "How many times one verification code may be checked; after that many wrong tries "
            "it is dead.",
        ),
        Setting(
            "CODE_TEMPLATE_ID",
            "",
            (str,),
            "Console template for verification codes, filled with [code, minutes].",
        ),
        Setting(
            "CODE_MESSAGE",
            "",
            (str,),
            "Free text for verification codes with {code} and {minutes} placeholders, signature "
            "included, e.g. '【签名】您的验证码是{code}，{minutes}分钟内有效。'",
        ),
        Setting(
            "CODE_COOLDOWN",
            60.0,
            (int, float),
            "Seconds between two verification codes to one number.",
        ),
        Setting(
            "LIMIT_NUMBER_PER_HOUR",
            5,
            (int,),
            "Messages one number may receive in an hour (codes; every send with LIMIT_ALL_SENDS).",
        ),
        Setting(
            "LIMIT_NUMBER_PER_DAY",
            10,
            (int,),
            "Messages one number may receive in a day (codes; every send with LIMIT_ALL_SENDS).",
        ),
        Setting(
            "LIMIT_IP_PER_HOUR",
            20,
            (int,),
            "Messages one client IP (IPv6: one /64 network) may cause in an hour.",
        ),
        Setting(
            "LIMIT_SITE_PER_MINUTE",
            30,
            (int,),
            "Messages the whole site may send in a minute: a breaker against floods.",
        ),
        Setting(
            "LIMIT_SITE_PER_DAY",
            1000,
            (int,),
            "Messages the whole site may send in a day: the daily budget.",
        ),
        Setting(
            "LIMIT_ALL_SENDS",
            False,
            (bool,),
            "Apply the per-number, per-IP and site-wide limits to every send_sms, not only to "
            "verification codes.",
        ),
    )
}


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:  # a host name
        return False


def configured() -> dict[str, Any]:
    """The project's ``ZHENZI`` dict as written (empty when absent or not a dict)."""
    value = getattr(django_settings, "ZHENZI", {})
    return value if isinstance(value, dict) else {}


class ZhenziSettings:
    """Attribute access to ``settings.ZHENZI`` with defaults: ``zhenzi_settings.TIMEOUT``."""

    def __getattr__(self, name: str) -> Any:
        try:
            setting = SETTINGS[name]
        except KeyError:
            raise AttributeError(f"ZHENZI has no setting {name!r}") from None
        return configured().get(name, setting.default)

    def require(self, name: str) -> Any:
        """The value of ``name``, or ImproperlyConfigured naming the missing setting."""
        value = getattr(self, name)
        if value in ("", None):
            raise ImproperlyConfigured(
                f"settings.ZHENZI[{name!r}] is not set. {SETTINGS[name].description}"
            )
        return value

    @property
    def callback_tokens(self) -> tuple[str, ...]:
        """Every valid callback token (one string or a list of them in the settings); a value of
        another type counts as none (check E003 reports it)."""
        value = self.CALLBACK_TOKEN
        tokens = [value] if isinstance(value, str) else value
        if not isinstance(tokens, (list, tuple)):
            return ()
        return tuple(token for token in tokens if isinstance(token, str) and token)

    def __repr__(self) -> str:
        return "<ZhenziSettings>"


zhenzi_settings = ZhenziSettings()
