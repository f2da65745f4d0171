"""get_backend(path=None, **options), like Django's get_connection, and send_sms(backend=...)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

import django_zhenzi
from django_zhenzi import get_backend, send_sms, services
from django_zhenzi.backends import BaseSmsBackend, OutgoingSms
from django_zhenzi.backends.zhenzi import SmsBackend as ZhenziBackend
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import MaybeSent, Message, Status
from django_zhenzi.sandbox import Sandbox
from django_zhenzi.sandbox.provider import SEND_PATH
from tests.project.test_secret_in_tracebacks import frame_variables

LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
CONSOLE = "django_zhenzi.backends.console.SmsBackend"
RECORDING = "tests.backends.test_get_backend.RecordingBackend"
OTHER_ID = "other-app"
OTHER_SECRET = "other-secret-value-0123"


class RecordingBackend(BaseSmsBackend):
    """A custom backend with an option of its own."""

    def __init__(self, *, signature: str, **options: Any) -> None:
        super().__init__(**options)
        self.signature = signature
        self.sent: list[OutgoingSms] = []
        self.closed = False

    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        self.sent.append(sms)
        return {"code": 0, "data": self.signature}

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def zhenzi(settings, sandbox: Sandbox) -> Sandbox:
    """The settings' account, on the sandbox."""
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox


@pytest.fixture
def other() -> Iterator[Sandbox]:
    """Another Zhenzi app, which only its own credentials reach."""
    with Sandbox(port=0, app_id=OTHER_ID, app_secret=OTHER_SECRET) as running:
        yield running


def other_backend(other: Sandbox, **options: Any) -> BaseSmsBackend:
    return get_backend(api_url=other.url, app_id=OTHER_ID, app_secret=OTHER_SECRET, **options)


# --- get_backend ----------------------------------------------------------------------------------


def test_without_a_path_or_options_each_thread_shares_one_backend():
    assert get_backend() is get_backend()
    assert get_backend(None) is get_backend()


def test_a_path_or_options_give_a_new_backend_the_caller_owns(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": RECORDING}

    assert isinstance(get_backend(signature="【甲】"), RecordingBackend)  # the settings' class
    with get_backend(RECORDING, signature="【甲】") as backend:
        assert isinstance(backend, RecordingBackend)
        assert backend is not get_backend(RECORDING, signature="【甲】")
        assert not backend.closed
    assert backend.closed


def test_a_custom_backend_receives_its_options():
    backend = get_backend(RECORDING, signature="【乙公司】")

    assert backend.send(OutgoingSms(number="13800138000", message_id="m" * 32)) == {
        "code": 0,
        "data": "【乙公司】",
    }


def test_the_console_backend_takes_its_stream():
    stream = io.StringIO()

    get_backend(CONSOLE, stream=stream).send(
        OutgoingSms(number="13800138000", message_id="m" * 32, text="【测试】你好")
    )

    assert stream.getvalue() == f"SMS to 13800138000 [{'m' * 32}]: 【测试】你好\n"


@pytest.mark.parametrize("path", [None, LOCMEM, RECORDING])
def test_an_option_the_backend_does_not_take_is_refused_by_name(path):
    options = {"app_secrt": "misspelt-secret-value", "colour": "red"}
    if path == RECORDING:
        options["signature"] = "【甲】"

    with pytest.raises(TypeError, match=r"takes no option app_secrt, colour\.$") as caught:
        get_backend(path, **options)

    assert "misspelt-secret-value" not in str(caught.value)


def test_a_path_that_cannot_be_imported_is_improperly_configured():
    with pytest.raises(ImproperlyConfigured, match=r"The SMS backend 'nowhere\.Backend' cannot"):
        get_backend("nowhere.Backend")


def test_options_override_the_settings_for_that_backend_only(zhenzi, other):
    with other_backend(other, timeout=3) as backend:
        assert isinstance(backend, ZhenziBackend)
        assert (backend.client.api_url, backend.client.app_id) == (other.url, OTHER_ID)
        assert backend.client.timeout == 3
        assert backend.balance() == other.balance
        other.balance = 1234
        assert backend.balance() == 1234
    assert get_backend().balance() == zhenzi.balance != 1234


@pytest.mark.parametrize("option", ["app_id", "app_secret", "api_url"])
def test_an_empty_account_option_is_refused(option):
    with pytest.raises(ValueError, match="can't be empty"):
        get_backend(**{option: ""})


@pytest.mark.parametrize("setting", ["APP_ID", "APP_SECRET", "API_URL"])
@pytest.mark.parametrize("path", [None, "django_zhenzi.backends.zhenzi.SmsBackend"])
def test_an_empty_account_setting_is_improperly_configured(settings, setting, path):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": "django_zhenzi.backends.zhenzi.SmsBackend",
        setting: "",
    }
    with pytest.raises(ImproperlyConfigured, match=rf"settings\.ZHENZI\['{setting}'\]"):
        get_backend(path)


def test_the_secret_given_as_an_option_shows_nowhere(settings):
    backend = get_backend(api_url="http://127.0.0.1:9", app_id=OTHER_ID, app_secret=OTHER_SECRET)
    shown = [repr(backend), repr(vars(backend)), repr(vars(backend.client))]
    assert OTHER_ID in repr(backend)
    assert not [text for text in shown if OTHER_SECRET in text]

    settings.ZHENZI = {**settings.ZHENZI, "APP_ID": ""}  # building it fails: no app id at all
    with pytest.raises(ImproperlyConfigured, match="APP_ID") as caught:
        get_backend(app_secret=OTHER_SECRET)
    variables = frame_variables(caught.value)
    assert "get_backend.options" in variables
    assert [name for name, shown in variables.items() if OTHER_SECRET in shown] == []


# --- send_sms(backend=...) ------------------------------------------------------------------------


@pytest.mark.django_db
def test_send_sms_through_a_backend_with_other_credentials(
    zhenzi, other, django_capture_on_commit_callbacks
):
    with other_backend(other) as backend, django_capture_on_commit_callbacks(execute=True):
        rows = send_sms(["13800138000", "13900139000"], "【乙公司】您的订单已发货", backend=backend)
    for row in rows:
        row.refresh_from_db()

    assert [row.status for row in rows] == [Status.SENT, Status.SENT]
    # The other app only takes its own credentials: the messages went through them.
    assert [other.message(row.message_id)["number"] for row in rows] == [
        "13800138000",
        "13900139000",
    ]
    assert zhenzi.messages == []
    assert services.run_workers().claimed == 0


@pytest.mark.django_db
def test_a_custom_backend_sends_the_message(django_capture_on_commit_callbacks):
    backend = get_backend(RECORDING, signature="【甲】")

    with django_capture_on_commit_callbacks(execute=True):
        message = send_sms("13800138000", "【甲】你好", backend=backend)
    message.refresh_from_db()

    assert [sms.message_id for sms in backend.sent] == [message.message_id]
    assert message.provider_answer == {"code": 0, "data": "【甲】"}


@pytest.mark.django_db
def test_a_queued_send_takes_no_backend():
    with pytest.raises(ValueError, match="queue=True"):
        send_sms("13800138000", "【测试】你好", queue=True, backend=get_backend(LOCMEM))
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_backend_path_is_not_a_backend():
    with pytest.raises(TypeError, match="not str"):
        send_sms("13800138000", "【测试】你好", backend=LOCMEM)  # type: ignore[arg-type]
    assert not Message.objects.exists()


def refuse_the_account(other: Sandbox) -> None:
    other.app_secret = "changed-in-the-console"


def answer_1000(other: Sandbox) -> None:
    other.fail_next("code1000")


def cut_the_answer(other: Sandbox) -> None:
    other.fail_next("cut")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "error_code", "maybe_sent"),
    [
        (refuse_the_account, 110, MaybeSent.NO),  # would pause the queue
        (answer_1000, 1000, MaybeSent.NO),  # would be retried
        (cut_the_answer, None, MaybeSent.NO_ANSWER),  # would be reconciled
    ],
)
def test_what_the_workers_would_take_up_fails_instead(
    zhenzi, other, django_capture_on_commit_callbacks, fault, error_code, maybe_sent
):
    """The workers retry, resume and reconcile through the settings' backend: another account.
    A message sent through a caller's backend is never handed to them."""
    fault(other)

    with other_backend(other) as backend, django_capture_on_commit_callbacks(execute=True):
        message = send_sms("13800138000", "【乙公司】您的订单已发货", backend=backend)
    message.refresh_from_db()

    assert (message.status, message.error_code, message.maybe_sent) == (
        Status.FAILED,
        error_code,
        maybe_sent,
    )
    assert message.error_text
    assert services.run_workers().claimed == 0
    assert zhenzi.messages == []


@pytest.mark.django_db
def test_a_refused_account_stops_a_send_through_a_callers_backend_at_its_first_message(
    zhenzi, other, django_capture_on_commit_callbacks
):
    """Every further message would meet the same refusal: one request, not one per number."""
    refuse_the_account(other)
    numbers = [f"1380013{index:04d}" for index in range(30)]

    with other_backend(other) as backend, django_capture_on_commit_callbacks(execute=True):
        rows = send_sms(numbers, "【乙公司】您的订单已发货", backend=backend)

    assert other.requests_by_endpoint[SEND_PATH] == 1
    failed = Message.objects.filter(pk__in=[row.pk for row in rows])
    assert set(failed.values_list("status", "error_code", "maybe_sent")) == {
        (Status.FAILED, 110, MaybeSent.NO)
    }
    assert services.run_workers().claimed == 0
    assert zhenzi.messages == []


@pytest.mark.django_db
def test_a_send_through_a_callers_backend_cut_short_by_a_crash_is_never_sent_again(
    settings, clock, django_capture_on_commit_callbacks, received_signals
):
    """The process dies after the commit, before it records what the caller's backend did
    (the send may have gone out): the claim expires into a failure marked maybe-sent, never
    a send through the settings' backend."""
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    backend = get_backend(RECORDING, signature="【甲】")
    with django_capture_on_commit_callbacks(execute=False):  # the on-commit send never runs
        rows = send_sms(["13800138000", "13900139000"], "【甲】你好", backend=backend)

    clock.move(zhenzi_settings.CLAIM_TIMEOUT + 1)
    services.run_workers()

    stored = Message.objects.filter(pk__in=[row.pk for row in rows])
    assert set(stored.values_list("status", "maybe_sent", "external_backend")) == {
        (Status.FAILED, MaybeSent.CLAIM_EXPIRED, True)
    }
    assert django_zhenzi.outbox == []  # the settings' backend sent nothing
    assert [name for name, _ in received_signals].count("message_failed") == 2
