"""What the checks share: their tag, the decorator that registers a check of the ZHENZI dict,
and reading a key.

E001 checks that ``ZHENZI`` is a dict; every other check of it only runs when it is. E003 checks
the type of every key against the ``conf.SETTINGS`` registry, so a new key needs no new type
check; the other checks read a key through ``setting_value``, which hides a wrongly typed value so
each mistake is reported once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, register

from django_zhenzi.conf import SETTINGS

TAG = "django_zhenzi"
"""The tag of every check here: ``manage.py check --tag django_zhenzi``."""

GENERATE_TOKEN_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'  # noqa: S105

WRONG_TYPE = object()
"""What ``setting_value`` gives for a value of the wrong type (E003 reports it, other checks
skip it)."""

ConfigCheck = Callable[[dict[str, Any]], list[CheckMessage]]
DjangoCheck = Callable[..., list[CheckMessage]]


def zhenzi_check(*tags: str) -> Callable[[ConfigCheck], DjangoCheck]:
    """Register a check of the ``ZHENZI`` dict, run only when ``ZHENZI`` is a dict (else E001)."""

    def decorator(check: ConfigCheck) -> DjangoCheck:
        @functools.wraps(check)
        def run(
            app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
        ) -> list[CheckMessage]:
            config = getattr(settings, "ZHENZI", {})
            return check(config) if isinstance(config, dict) else []

        del run.__wrapped__  # Django inspects the signature: it must be run's, with **kwargs
        return register(run, TAG, *tags)

    return decorator


def setting_value(config: dict[str, Any], name: str) -> Any:
    """The value of ``name`` (its default when absent), or ``WRONG_TYPE``."""
    setting = SETTINGS[name]
    value = config.get(name, setting.default)
    return value if setting.accepts(value) else WRONG_TYPE


def setting_key(name: object, index: int | None = None) -> str:
    """How messages name a setting: ``ZHENZI['TIMEOUT']``, or one item: ``ZHENZI['X'][1]``."""
    return f"ZHENZI[{name!r}]" if index is None else f"ZHENZI[{name!r}][{index}]"
