"""The system checks of settings.ZHENZI, run through Django's check framework."""

from __future__ import annotations

from io import StringIO
from typing import Any, ClassVar

import pytest
from django.conf import settings
from django.core.checks import ERROR, WARNING, CheckMessage, Tags, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections
from django.test import override_settings
from django.utils import translation
from django.utils.functional import Promise

from django_zhenzi.checks import GENERATE_TOKEN_COMMAND, TAG, sqlite_transaction_mode_warnings
from django_zhenzi.conf import ENTERPRISE_API_URL, PERSONAL_API_URL, SETTINGS, ZHENZI_BACKEND
from django_zhenzi.models import Message

SECRET = "s3cr3t-app-secret-value-9f8e7d"
VALID: dict[str, Any] = {
    "APP_ID": "app-id",
    "APP_SECRET": SECRET,
    "API_URL": PERSONAL_API_URL,
    "TIMEOUT": 5,
    "CALLBACK_TOKEN": "x" * 32,
}
OTHER_BACKEND = "django_zhenzi.backends.locmem.SmsBackend"
EVERY_RULE_BROKEN: dict[str, Any] = {
    "APP_ID": "",
    "APP_SECRET": "",
    "API_URL": "http://sms.zhenzikj.com",
    "TIMEOUT": 0,
    "CALLBACK_TOKEN": "",
}


def zhenzi_messages(**kwargs: Any) -> list[CheckMessage]:
    return [
        message
        for message in run_checks(**kwargs)
        if message.id and message.id.startswith("django_zhenzi.")
    ]


def zhenzi_ids(**kwargs: Any) -> list[str]:
    return sorted(message.id for message in zhenzi_messages(**kwargs))


def ids_for(config: Any) -> list[str]:
    with override_settings(ZHENZI=config):
        return zhenzi_ids()


def messages_for(config: Any) -> list[CheckMessage]:
    with override_settings(ZHENZI=config):
        return zhenzi_messages()


def test_test_settings_are_clean():
    assert zhenzi_ids() == []


@pytest.mark.parametrize(
    "config",
    [
        VALID,
        {**VALID, "TIMEOUT": 2.5, "CALLBACK_TOKEN": ("x" * 16, "y" * 40)},
        {**VALID, "CALLBACK_TOKEN": ["x" * 32]},
        {"BACKEND": OTHER_BACKEND, "CALLBACK_TOKEN": "x" * 32},
    ],
)
def test_valid_configurations_are_clean(config):
    assert ids_for(config) == []


def test_missing_zhenzi_setting_needs_credentials_and_a_callback_token():
    with override_settings():
        del settings.ZHENZI
        assert zhenzi_ids() == [
            "django_zhenzi.E004",
            "django_zhenzi.E005",
            "django_zhenzi.W001",
        ]


@pytest.mark.parametrize("config", [None, "APP_ID=x", [("APP_ID", "x")]])
def test_e001_zhenzi_not_a_dict_skips_the_other_checks(config):
    messages = messages_for(config)
    assert [message.id for message in messages] == ["django_zhenzi.E001"]
    assert type(config).__name__ in str(messages[0].msg)


def test_e002_one_error_per_unknown_key_with_the_closest_key():
    messages = messages_for({**VALID, "TIMOUT": 5, "APP_SECRETT": SECRET})
    assert sorted(message.id for message in messages) == ["django_zhenzi.E002"] * 2
    hints = {str(message.msg): str(message.hint) for message in messages}
    assert hints == {
        "ZHENZI['TIMOUT'] is not a known setting.": "Did you mean ZHENZI['TIMEOUT']?",
        "ZHENZI['APP_SECRETT'] is not a known setting.": "Did you mean ZHENZI['APP_SECRET']?",
    }


@pytest.mark.parametrize("key", ["SMS_SIGNATURE", 42])
def test_e002_lists_the_known_keys_when_nothing_is_close(key):
    messages = messages_for({**VALID, key: "x"})
    assert [message.id for message in messages] == ["django_zhenzi.E002"]
    assert str(messages[0].hint) == "The known keys are: " + ", ".join(SETTINGS) + "."


@pytest.mark.parametrize(
    ("key", "value", "actual"),
    [
        ("TIMEOUT", True, "bool"),
        ("TIMEOUT", False, "bool"),  # would be E008 if the value check did not skip it
        ("TIMEOUT", "5", "str"),
        ("APP_ID", None, "NoneType"),
        ("APP_SECRET", 123456, "int"),
        ("API_URL", b"https://sms.zhenzikj.com", "bytes"),
        ("BACKEND", object, "type"),
        ("CALLBACK_TOKEN", ["x" * 32, 5], "list[str | int]"),
        ("CALLBACK_TOKEN", ("short", None), "tuple[str | NoneType]"),
        ("CALLBACK_TOKEN", {"x" * 32}, "set"),
    ],
)
def test_e003_wrong_type_is_reported_once(key, value, actual):
    messages = messages_for({**VALID, key: value})
    assert [message.id for message in messages] == ["django_zhenzi.E003"]
    assert f"ZHENZI['{key}'] must be " in str(messages[0].msg)
    assert str(messages[0].msg).endswith(f", not {actual}.")


def test_e003_names_the_accepted_types():
    messages = messages_for({**VALID, "TIMEOUT": True, "CALLBACK_TOKEN": 7})
    assert sorted(str(message.msg) for message in messages) == [
        "ZHENZI['CALLBACK_TOKEN'] must be str | list[str] | tuple[str, ...], not int.",
        "ZHENZI['TIMEOUT'] must be int | float, not bool.",
    ]


def without(key: str) -> dict[str, Any]:
    return {name: value for name, value in VALID.items() if name != key}


@pytest.mark.parametrize(
    "config", [without("APP_ID"), {**VALID, "APP_ID": ""}, {**VALID, "APP_ID": "   "}]
)
def test_e004_app_id_missing_for_zhenzi_backend(config):
    assert ids_for(config) == ["django_zhenzi.E004"]
    assert ids_for({**config, "BACKEND": ZHENZI_BACKEND}) == ["django_zhenzi.E004"]


@pytest.mark.parametrize(
    "config", [without("APP_SECRET"), {**VALID, "APP_SECRET": ""}, {**VALID, "APP_SECRET": "  "}]
)
def test_e005_app_secret_missing_for_zhenzi_backend(config):
    assert ids_for(config) == ["django_zhenzi.E005"]
    assert ids_for({**config, "BACKEND": ZHENZI_BACKEND}) == ["django_zhenzi.E005"]


def test_credentials_are_not_needed_by_other_backends():
    config = {**VALID, "APP_ID": "", "APP_SECRET": "", "BACKEND": OTHER_BACKEND}
    assert ids_for(config) == []


@pytest.mark.parametrize(
    "url",
    [
        "sms.zhenzikj.com",
        "ftp://sms.zhenzikj.com",
        "https://",
        "",
        "/sms/send.do",
        "https://sms.zhenzikj.com:port",
        "https://sms.zhenzikj.com:0",
        "http://[::1",
    ],
)
def test_e006_api_url_not_an_absolute_http_url(url):
    messages = messages_for({**VALID, "API_URL": url})
    assert [message.id for message in messages] == ["django_zhenzi.E006"]
    assert repr(url) in str(messages[0].msg)


@pytest.mark.parametrize(
    "url",
    [
        "http://sms.zhenzikj.com",
        "http://sms_developer.zhenzikj.com",
        "http://10.0.0.5:8086",
        "http://128.0.0.1",
        "http://[::2]:8086",
        "http://localhost.example.com",
    ],
)
def test_e007_plain_http_to_another_host(url):
    assert ids_for({**VALID, "API_URL": url}) == ["django_zhenzi.E007"]


@pytest.mark.parametrize(
    "url",
    [
        PERSONAL_API_URL,
        ENTERPRISE_API_URL,
        "HTTPS://SMS.ZHENZIKJ.COM/",
        "http://127.0.0.1:8086",
        "http://127.8.9.10:8086",
        "http://localhost:8086",
        "http://[::1]:8086",
    ],
)
def test_https_and_loopback_urls_pass_e006_and_e007(url):
    assert ids_for({**VALID, "API_URL": url}) == []


@pytest.mark.parametrize("timeout", [0, 0.0, -1, -0.5, float("nan")])
def test_e008_timeout_not_positive(timeout):
    assert ids_for({**VALID, "TIMEOUT": timeout}) == ["django_zhenzi.E008"]


def test_e009_short_callback_token():
    token = "abcdefghijklmno"  # one character short
    messages = messages_for({**VALID, "CALLBACK_TOKEN": token})
    assert [message.id for message in messages] == ["django_zhenzi.E009"]
    assert str(messages[0].msg).startswith("ZHENZI['CALLBACK_TOKEN'] is shorter than 16 ")
    assert token not in str(messages[0])
    assert ids_for({**VALID, "CALLBACK_TOKEN": token + "p"}) == []


def test_e009_names_each_short_token_by_position():
    tokens = ["x" * 32, "tiny-token", "", "y" * 16]
    messages = messages_for({**VALID, "CALLBACK_TOKEN": tokens})
    assert [message.id for message in messages] == ["django_zhenzi.E009"] * 2
    rendered = sorted(str(message.msg) for message in messages)
    assert rendered[0].startswith("ZHENZI['CALLBACK_TOKEN'][1] is shorter than 16 ")
    assert rendered[1].startswith("ZHENZI['CALLBACK_TOKEN'][2] is shorter than 16 ")
    assert not any("tiny-token" in str(message) for message in messages)


@pytest.mark.parametrize("tokens", ["", [], ()])
def test_w001_no_callback_token(tokens):
    messages = messages_for({**VALID, "CALLBACK_TOKEN": tokens})
    assert [message.id for message in messages] == ["django_zhenzi.W001"]
    assert messages[0].level == WARNING
    assert GENERATE_TOKEN_COMMAND in str(messages[0].hint)


def test_every_rule_broken_at_once():
    assert ids_for(EVERY_RULE_BROKEN) == [
        "django_zhenzi.E004",
        "django_zhenzi.E005",
        "django_zhenzi.E007",
        "django_zhenzi.E008",
        "django_zhenzi.W001",
    ]


@pytest.mark.parametrize(
    "config",
    [
        {**EVERY_RULE_BROKEN, "APP_SECRET": SECRET, "APP_SECRT": SECRET, "CALLBACK_TOKEN": ["t"]},
        {**VALID, "APP_SECRET": SECRET.encode()},
        {**VALID, "APP_SECRET": [SECRET]},
        {**VALID, "APP_SECRET": {"value": SECRET}},
        {**VALID, "APP_ID": "", "API_URL": "sms.zhenzikj.com", "TIMEOUT": -1},
    ],
)
def test_the_app_secret_never_appears_in_a_message(config):
    messages = messages_for(config)
    assert messages
    for message in messages:
        assert SECRET not in str(message.msg)
        assert SECRET not in str(message.hint)
        assert SECRET not in str(message)


def test_every_message_is_translatable_and_has_a_hint():
    config = {**EVERY_RULE_BROKEN, "API_URL": "ftp://x", "TIMOUT": 1, "CALLBACK_TOKEN": ["t", 1]}
    messages = messages_for(config) + messages_for(None) + messages_for({"CALLBACK_TOKEN": "t"})
    assert {message.id for message in messages} == {
        "django_zhenzi.E001",
        "django_zhenzi.E002",
        "django_zhenzi.E003",
        "django_zhenzi.E004",
        "django_zhenzi.E005",
        "django_zhenzi.E006",
        "django_zhenzi.E008",
        "django_zhenzi.E009",
    }
    for message in messages:
        assert message.level == ERROR
        assert isinstance(message.msg, Promise)
        assert isinstance(message.hint, Promise)
        assert str(message.hint)


def test_security_checks_are_tagged_security():
    with override_settings(ZHENZI={**EVERY_RULE_BROKEN, "CALLBACK_TOKEN": ["t"]}):
        assert zhenzi_ids(tags=[Tags.security]) == [
            "django_zhenzi.E005",
            "django_zhenzi.E007",
            "django_zhenzi.E009",
        ]
        assert zhenzi_ids(tags=[TAG]) == [
            "django_zhenzi.E004",
            "django_zhenzi.E005",
            "django_zhenzi.E007",
            "django_zhenzi.E008",
            "django_zhenzi.E009",
        ]
    with override_settings(ZHENZI={**VALID, "CALLBACK_TOKEN": ""}):
        assert zhenzi_ids(tags=[Tags.security]) == ["django_zhenzi.W001"]


def test_check_command_fails_on_an_error():
    with (
        override_settings(ZHENZI={**VALID, "TIMEOUT": 0}),
        pytest.raises(SystemCheckError, match=r"django_zhenzi\.E008"),
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_check_command_passes_with_the_test_settings():
    stdout = StringIO()
    call_command("check", stdout=stdout, stderr=StringIO())
    assert "no issues" in stdout.getvalue()


def test_check_command_passes_with_only_a_warning():
    stderr = StringIO()
    with override_settings(ZHENZI={**VALID, "CALLBACK_TOKEN": ""}):
        call_command("check", stdout=StringIO(), stderr=stderr)
    assert "django_zhenzi.W001" in stderr.getvalue()


@pytest.mark.parametrize(
    "key", ["MAX_ATTEMPTS", "RETRY_DELAY", "RETRY_MAX_DELAY", "CLAIM_TIMEOUT", "RECONCILE_DELAY"]
)
def test_e008_every_numeric_setting_must_be_positive(key):
    messages = messages_for({**VALID, key: 0})
    assert [message.id for message in messages] == ["django_zhenzi.E008"]
    assert f"ZHENZI['{key}']" in str(messages[0].msg)


def test_e003_max_attempts_must_be_an_integer():
    assert ids_for({**VALID, "MAX_ATTEMPTS": 2.5}) == ["django_zhenzi.E003"]


def test_e010_claim_timeout_must_exceed_twice_the_timeout():
    assert ids_for({**VALID, "TIMEOUT": 10, "CLAIM_TIMEOUT": 20}) == ["django_zhenzi.E010"]
    assert ids_for({**VALID, "TIMEOUT": 10, "CLAIM_TIMEOUT": 21}) == []
    assert ids_for({**VALID, "TIMEOUT": 200}) == ["django_zhenzi.E010"]  # default claim: 300 s


def test_e011_reconcile_settle_must_be_at_least_three_times_the_timeout():
    messages = messages_for({**VALID, "TIMEOUT": 10, "RECONCILE_SETTLE": 29.5})

    assert [message.id for message in messages] == ["django_zhenzi.E011"]
    (message,) = messages
    assert message.level == ERROR
    assert str(message.msg) == (
        "ZHENZI['RECONCILE_SETTLE'] (29.5 s) must be at least three times ZHENZI['TIMEOUT'] (10 s)."
    )
    assert isinstance(message.msg, Promise)
    assert isinstance(message.hint, Promise)
    assert "sent a second time" in str(message.hint)


def test_e011_is_silent_at_the_boundary_and_with_the_defaults():
    assert ids_for({**VALID, "TIMEOUT": 10, "RECONCILE_SETTLE": 30}) == []  # exactly 3 x
    assert ids_for({**VALID, "TIMEOUT": 10}) == []  # the default settle: 600 s
    # The default settle against the longest TIMEOUT it allows, and just past it.
    assert ids_for({**VALID, "TIMEOUT": 200, "CLAIM_TIMEOUT": 1000}) == []
    assert ids_for({**VALID, "TIMEOUT": 200.5, "CLAIM_TIMEOUT": 1000}) == ["django_zhenzi.E011"]


@pytest.mark.parametrize(
    ("settle", "expected"),
    [(0, "django_zhenzi.E008"), (-5, "django_zhenzi.E008"), ("600", "django_zhenzi.E003")],
)
def test_e011_leaves_a_settle_that_is_not_a_positive_number_to_e003_and_e008(settle, expected):
    assert ids_for({**VALID, "RECONCILE_SETTLE": settle}) == [expected]


def test_e011_in_chinese():
    with translation.override("zh-hans"):
        (message,) = messages_for({**VALID, "TIMEOUT": 10, "RECONCILE_SETTLE": 20})
        text, hint = str(message.msg), str(message.hint)
    assert (
        text == "ZHENZI['RECONCILE_SETTLE']（20 秒）必须至少是 ZHENZI['TIMEOUT']（10 秒）的三倍。"
    )
    assert "sent a second time" not in hint


# --- W030: SQLite without IMMEDIATE transactions -------------------------------------------------

SQLITE_HINT_OPTIONS = '"OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20}'


@pytest.mark.parametrize(
    "database",
    [
        {},
        {"OPTIONS": {}},
        {"OPTIONS": None},
        {"OPTIONS": {"transaction_mode": None}},
        {"OPTIONS": {"transaction_mode": "DEFERRED"}},
        {"OPTIONS": {"transaction_mode": "deferred", "init_command": "PRAGMA foreign_keys=ON"}},
    ],
)
def test_w030_sqlite_with_deferred_transactions(database):
    messages = sqlite_transaction_mode_warnings("default", "sqlite", database)
    assert [message.id for message in messages] == ["django_zhenzi.W030"]
    assert messages[0].level == WARNING
    assert '"database is locked"' in str(messages[0].msg)
    assert 'The database "default"' in str(messages[0].msg)
    assert 'DATABASES["default"]' in str(messages[0].hint)
    assert SQLITE_HINT_OPTIONS in str(messages[0].hint)
    assert isinstance(messages[0].msg, Promise)
    assert isinstance(messages[0].hint, Promise)


def test_w030_names_the_database_and_keeps_its_busy_timeout():
    database = {"OPTIONS": {"timeout": 45}}
    [message] = sqlite_transaction_mode_warnings("sms", "sqlite", database)
    assert 'The database "sms"' in str(message.msg)
    assert "with DEFERRED transactions" in str(message.msg)
    assert '"OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 45}' in str(message.hint)


@pytest.mark.parametrize("mode", ["IMMEDIATE", "immediate", "Immediate", "EXCLUSIVE"])
def test_w030_silent_when_sqlite_takes_the_write_lock_up_front(mode):
    database = {"OPTIONS": {"transaction_mode": mode, "timeout": 20}}
    assert sqlite_transaction_mode_warnings("default", "sqlite", database) == []


@pytest.mark.parametrize("vendor", ["postgresql", "mysql", "oracle"])
def test_w030_silent_on_other_databases(vendor):
    assert sqlite_transaction_mode_warnings("default", vendor, {"OPTIONS": {}}) == []


class MessagesRouter:
    """Sends writes of django_zhenzi's models to "default", recording what it was asked about."""

    models: ClassVar[list[type]] = []

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        self.models.append(model)
        return "default" if model._meta.app_label == "django_zhenzi" else None


def test_w030_checks_the_database_the_router_picks_for_messages(monkeypatch):
    database = connections["default"]
    monkeypatch.setattr(database, "vendor", "sqlite")  # whatever the suite runs on
    monkeypatch.setitem(database.settings_dict, "OPTIONS", {"timeout": 20})
    MessagesRouter.models.clear()
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.MessagesRouter"]):
        assert zhenzi_ids() == ["django_zhenzi.W030"]
    assert Message in MessagesRouter.models
    monkeypatch.setitem(database.settings_dict, "OPTIONS", {"transaction_mode": "IMMEDIATE"})
    assert zhenzi_ids() == []
