"""System checks of the integrations (E100-E119): django-allauth (E10x), django-two-factor-auth
(E11x). Registered by the django_zhenzi app, so they run whether or not the integrations are
used; each looks at its package's settings only when they point at django-zhenzi, and imports
nothing of a package that is not in use. Check ids are documented in docs/settings.rst: never
reuse or renumber one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from django_zhenzi.conf import zhenzi_settings

TAG = "django_zhenzi"
ALLAUTH_APP = "django_zhenzi.contrib.allauth"
ALLAUTH_ADAPTER = "django_zhenzi.contrib.allauth.adapter.ZhenziAccountAdapter"
TWO_FACTOR_GATEWAY = "django_zhenzi.contrib.two_factor.ZhenziGateway"


def _subclass_of(path: object, base: str) -> bool:
    """Whether the class at dotted ``path`` is ``base`` (a dotted path too) or derives from it;
    False when either cannot be imported (the package's own checks or first use say why)."""
    if not isinstance(path, str) or not path:
        return False
    try:
        found, wanted = import_string(path), import_string(base)
    except (ImportError, RuntimeError):
        return False
    return isinstance(found, type) and issubclass(found, wanted)


def _no_code_content() -> bool:
    if not isinstance(getattr(settings, "ZHENZI", {}), dict):
        return False  # E001 says so
    return not (zhenzi_settings.CODE_MESSAGE or zhenzi_settings.CODE_TEMPLATE_ID)


_CONTENT_HINT = _(
    "Set ZHENZI['CODE_MESSAGE'] (a text with {code} and {minutes}, e.g. "
    "'【签名】您的验证码是{code}，{minutes}分钟内有效。') or ZHENZI['CODE_TEMPLATE_ID'] (a "
    "console template filled with [code, minutes])."
)


@register(TAG)
def check_allauth(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E101: allauth sends its codes through django-zhenzi, with no code text or template set.
    E102: ACCOUNT_ADAPTER is django-zhenzi's, but its app (which stores the numbers) is not
    installed."""
    adapter = getattr(settings, "ACCOUNT_ADAPTER", None)
    if not apps.is_installed(ALLAUTH_APP):
        if isinstance(adapter, str) and adapter.startswith(ALLAUTH_APP + "."):
            return [
                Error(
                    _(
                        "ACCOUNT_ADAPTER is django-zhenzi's ZhenziAccountAdapter, but "
                        "django_zhenzi.contrib.allauth is not in INSTALLED_APPS."
                    ),
                    hint=_(
                        'Add "django_zhenzi.contrib.allauth" to INSTALLED_APPS (it stores '
                        "the users' numbers) and run migrate."
                    ),
                    id="django_zhenzi.E102",
                )
            ]
        return []
    if not _subclass_of(adapter, ALLAUTH_ADAPTER) or not _no_code_content():
        return []
    return [
        Error(
            _(
                "django-allauth sends its codes through django-zhenzi, but neither "
                "ZHENZI['CODE_MESSAGE'] nor ZHENZI['CODE_TEMPLATE_ID'] is set."
            ),
            hint=_CONTENT_HINT,
            id="django_zhenzi.E101",
        )
    ]


@register(TAG)
def check_two_factor(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E110: TWO_FACTOR_CALL_GATEWAY is ZhenziGateway, which cannot call. E111: two-factor sends
    its tokens through django-zhenzi, with no code text or template set."""
    errors: list[CheckMessage] = []
    if _subclass_of(getattr(settings, "TWO_FACTOR_CALL_GATEWAY", None), TWO_FACTOR_GATEWAY):
        errors.append(
            Error(
                _(
                    "TWO_FACTOR_CALL_GATEWAY is django-zhenzi's ZhenziGateway, but Zhenzi sends "
                    "text messages only and cannot place phone calls."
                ),
                hint=_(
                    "Remove TWO_FACTOR_CALL_GATEWAY to offer no phone calls, or point it at a "
                    "gateway that can call; keep ZhenziGateway as TWO_FACTOR_SMS_GATEWAY."
                ),
                id="django_zhenzi.E110",
            )
        )
    sms_gateway = getattr(settings, "TWO_FACTOR_SMS_GATEWAY", None)
    if _subclass_of(sms_gateway, TWO_FACTOR_GATEWAY) and _no_code_content():
        errors.append(
            Error(
                _(
                    "django-two-factor-auth sends its tokens through django-zhenzi, but neither "
                    "ZHENZI['CODE_MESSAGE'] nor ZHENZI['CODE_TEMPLATE_ID'] is set."
                ),
                hint=_CONTENT_HINT,
                id="django_zhenzi.E111",
            )
        )
    return errors
