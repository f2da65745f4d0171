"""The system checks of the integrations (django_zhenzi.contrib.checks), one test per id, run
through Django's check framework."""

from __future__ import annotations

import sys

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from django_zhenzi.contrib.checks import TAG

ADAPTER = "django_zhenzi.contrib.allauth.adapter.ZhenziAccountAdapter"
GATEWAY = "django_zhenzi.contrib.two_factor.ZhenziGateway"
WITH_TEXT = {"CODE_MESSAGE": "【测试】您的验证码是{code}，{minutes}分钟内有效。"}
WITH_TEMPLATE = {"CODE_TEMPLATE_ID": "1001"}
WITHOUT_CONTENT: dict[str, str] = {}


def contrib_ids() -> list[str]:
    return sorted(
        message.id
        for message in run_checks(tags=[TAG])
        if message.id and message.id.startswith("django_zhenzi.E1")
    )


def test_nothing_to_say_when_no_integration_is_used():
    with override_settings(ZHENZI=WITHOUT_CONTENT):
        assert contrib_ids() == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [(WITHOUT_CONTENT, ["django_zhenzi.E101"]), (WITH_TEXT, []), (WITH_TEMPLATE, [])],
)
def test_e101_allauth_needs_a_code_text_or_template(config, expected):
    pytest.importorskip("allauth")
    with override_settings(ACCOUNT_ADAPTER=ADAPTER, ZHENZI=config):
        assert contrib_ids() == expected


def test_e101_covers_a_sites_own_adapter_built_on_ours(monkeypatch):
    ours = pytest.importorskip("django_zhenzi.contrib.allauth.adapter").ZhenziAccountAdapter
    site_adapter = type("SiteAdapter", (ours,), {"__module__": __name__})
    monkeypatch.setattr(sys.modules[__name__], "SiteAdapter", site_adapter, raising=False)
    with override_settings(ACCOUNT_ADAPTER=f"{__name__}.SiteAdapter", ZHENZI={}):
        assert contrib_ids() == ["django_zhenzi.E101"]


def test_e102_the_adapter_without_its_app(settings):
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "django_zhenzi.contrib.allauth"
    ]
    with override_settings(ACCOUNT_ADAPTER=ADAPTER, ZHENZI=WITH_TEXT):
        assert contrib_ids() == ["django_zhenzi.E102"]


def test_e110_zhenzi_cannot_call():
    with override_settings(TWO_FACTOR_CALL_GATEWAY=GATEWAY, ZHENZI=WITH_TEXT):
        assert contrib_ids() == ["django_zhenzi.E110"]


@pytest.mark.parametrize(
    ("config", "expected"), [(WITHOUT_CONTENT, ["django_zhenzi.E111"]), (WITH_TEXT, [])]
)
def test_e111_two_factor_needs_a_code_text_or_template(config, expected):
    with override_settings(TWO_FACTOR_SMS_GATEWAY=GATEWAY, ZHENZI=config):
        assert contrib_ids() == expected
