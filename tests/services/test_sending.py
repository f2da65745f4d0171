"""send_sms, the message life and the worker pass, on the locmem backend and the sandbox."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import translation

import django_zhenzi
from django_zhenzi import send_sms, services, signals
from django_zhenzi.backends import get_backend
from django_zhenzi.client import ZhenziInputError
from django_zhenzi.models import Message, Status

LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"

pytestmark = pytest.mark.django_db


@pytest.fixture
def locmem(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}


def test_send_one_now(locmem, received_signals, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = send_sms("13800138000", "【测试】您的订单已发货")

    assert isinstance(message, Message)
    message = Message.objects.get(pk=message.pk)
    assert message.status == Status.SENT
    assert message.attempts == 1
    assert message.sent_at is not None
    assert len(message.message_id) == 32
    assert [sms.message_id for sms in django_zhenzi.outbox] == [message.message_id]
    assert [name for name, _ in received_signals] == ["status_changed", "message_sent"]


def test_send_many_returns_one_row_per_number(locmem, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        rows = send_sms(["13800138000", "bad", "13900139000"], "【测试】通知")

    assert [row.number for row in rows] == ["13800138000", "bad", "13900139000"]
    statuses = [Message.objects.get(pk=row.pk).status for row in rows]
    assert statuses == [Status.SENT, Status.FAILED, Status.SENT]
    assert "not a mainland China mobile number" in rows[1].error_text
    assert sorted(sms.number for sms in django_zhenzi.outbox) == ["13800138000", "13900139000"]


def test_queued_messages_wait_for_a_worker(locmem):
    rows = send_sms(["13800138000", "13900139000"], "【测试】通知", queue=True)

    assert {row.status for row in rows} == {Status.QUEUED}
    assert django_zhenzi.outbox == []
    result = services.run_workers()
    assert result.sent == 2
    assert len(django_zhenzi.outbox) == 2


def test_template_messages(locmem, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = send_sms("13800138000", template_id="1001", template_params=["9988", "5分钟"])

    (sms,) = django_zhenzi.outbox
    assert sms.template_id == "1001"
    assert sms.template_params == ("9988", "5分钟")
    assert Message.objects.get(pk=message.pk).template_params == ["9988", "5分钟"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"numbers": "13800138000", "message": ""}, "message"),
        ({"numbers": "13800138000", "message": "x" * 1001}, "message"),
        ({"numbers": "123", "message": "【测试】x"}, "number"),
        ({"numbers": [], "message": "【测试】x"}, "number"),
        ({"numbers": "13800138000", "template_id": "1", "template_params": [1]}, "template_params"),
        ({"numbers": "13800138000", "message": "x", "template_id": "1"}, "message"),
        ({"numbers": "13800138000", "message": "x", "client_ip": "nope"}, "client_ip"),
    ],
)
def test_bad_input_raises_before_anything_is_stored(locmem, kwargs, field):
    with pytest.raises(ZhenziInputError) as caught:
        send_sms(**kwargs)
    assert caught.value.field == field
    assert Message.objects.count() == 0


def test_rollback_sends_nothing(locmem, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        send_sms("13800138000", "【测试】通知")
        raise RuntimeError("the view failed")
    assert callbacks == []
    assert Message.objects.count() == 0
    assert django_zhenzi.outbox == []


def test_retry_schedule_with_controlled_time(sandbox, settings, clock):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "MAX_ATTEMPTS": 4,
        "RETRY_DELAY": 10,
        "RETRY_MAX_DELAY": 25,
    }
    message = send_sms("13800138000", "【测试】通知", queue=True)
    delays = []
    for _ in range(3):
        sandbox.fail_next("code1000")
        services.run_workers()
        message.refresh_from_db()
        assert message.status == Status.QUEUED
        assert message.error_code == 1000
        delays.append((message.next_attempt_at - clock.moment).total_seconds())
        assert services.run_workers().claimed == 0  # not due yet
        clock.moment = message.next_attempt_at
    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20
    assert 12.5 <= delays[2] <= 25  # capped at RETRY_MAX_DELAY
    sandbox.fail_next("code1000")
    services.run_workers()
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.attempts == 4
    assert message.error_text.startswith("Gave up after 4 attempts")


def test_retry_delay_has_jitter_within_bounds(settings):
    settings.ZHENZI = {**settings.ZHENZI, "RETRY_DELAY": 8, "RETRY_MAX_DELAY": 1000}
    rng = random.Random(1)
    delays = {services.retry_delay(3, rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(timedelta(seconds=16) <= delay <= timedelta(seconds=32) for delay in delays)


def test_permanent_error_fails_at_once(sandbox, settings, received_signals):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    message = send_sms("13800138000", template_id="999999", queue=True)  # unknown template

    services.run_workers()

    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_code == 117
    assert message.attempts == 1
    assert message.maybe_sent == ""
    assert [name for name, _ in received_signals][-1] == "message_failed"


def test_a_refused_secret_pauses_sending_and_stays_out_of_the_error(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "APP_SECRET": "wrong"}
    message = send_sms("13800138000", "【测试】通知", queue=True)

    result = services.run_workers()

    message.refresh_from_db()
    assert "110" in result.paused
    assert (message.status, message.error_code, message.attempts) == (Status.QUEUED, 110, 0)
    assert "wrong" not in message.error_text.replace("Wrong appSecret", "")


def test_ambiguous_outcome_is_reconciled_not_resent(sandbox, settings, clock):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "RECONCILE_DELAY": 60}
    message = send_sms("13800138000", "【测试】通知", queue=True)
    sandbox.fail_next("cut")

    services.run_workers()
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN
    assert "may have been processed" in message.error_text

    clock.move(61)
    assert services.run_workers().reconciled == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider_answer["findSmsByMessageId"]["messageId"] == message.message_id
    assert sandbox.request_count(message.message_id) == 1


def test_ambiguous_outcome_not_received_is_sent_again(sandbox, settings, clock):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "RECONCILE_DELAY": 60,
        "RETRY_DELAY": 1,
    }
    message = send_sms("13800138000", "【测试】通知", queue=True)
    sandbox.fail_next("http500")

    services.run_workers()
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN
    clock.move(61)
    services.run_workers()  # not found yet: within the settle window, asked again later
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN
    assert message.maybe_sent == "no_answer"
    clock.move(601)
    services.run_workers()  # still not found once settled: queued again, due a second later
    message.refresh_from_db()
    assert (message.status, message.maybe_sent) == (Status.QUEUED, "")
    assert sandbox.request_count(message.message_id) == 1
    clock.move(603)
    services.run_workers()

    message.refresh_from_db()
    assert message.status == Status.SENT
    assert sandbox.request_count(message.message_id) == 2
    assert sandbox.accepted_count(message.message_id) == 1
    assert message.attempts == 2


def test_expired_claim_counts_as_ambiguous(sandbox, settings, clock):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "CLAIM_TIMEOUT": 60}
    message = send_sms("13800138000", "【测试】通知", queue=True)
    token = services.new_claim_token()
    (claimed,) = services.claim_due(token, 10)  # a worker claims it, sends it, then dies
    get_backend().send(services.dispatch.outgoing_sms(claimed))
    clock.move(61)

    services.run_workers()

    message.refresh_from_db()
    assert message.status == Status.SENT
    assert sandbox.request_count(message.message_id) == 1


def test_poison_message_fails_alone(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    poison = send_sms("13800138000", template_id="999999", queue=True)  # unknown template: 117
    Message.objects.filter(pk=poison.pk).update(next_attempt_at=services.clock.now() - timedelta(1))
    send_sms([f"1380013{n:04d}" for n in range(99)], "【测试】通知", queue=True)

    result = services.run_workers(batch_size=30)

    assert result.sent == 99
    assert result.failed == 1
    poison.refresh_from_db()
    assert poison.status == Status.FAILED
    assert poison.error_code == 117


@override_settings(ZHENZI={"BACKEND": "django_zhenzi.backends.dummy.SmsBackend"})
def test_read_balance_is_not_supported_on_dummy():
    from django_zhenzi.backends import OperationNotSupported

    with pytest.raises(OperationNotSupported):
        services.read_balance()


def test_read_balance_records_a_snapshot(sandbox, settings):
    from django_zhenzi.models import BalanceSnapshot

    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    sandbox.balance = 321
    assert services.read_balance() == 321
    assert BalanceSnapshot.objects.get().balance == 321


def test_a_failing_signal_receiver_does_not_stop_the_worker(locmem, caplog):
    def explode(sender, **kwargs):
        raise RuntimeError("a buggy receiver")

    send_sms(["13800138000", "13900139000"], "【测试】通知", queue=True)
    signals.message_sent.connect(explode)
    try:
        result = services.run_workers()
    finally:
        signals.message_sent.disconnect(explode)

    assert result.sent == 2
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    assert "a buggy receiver" in caplog.text


def test_successes_of_a_batch_are_recorded_in_bulk(sandbox, settings, received_signals):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    send_sms([f"1380013{n:04d}" for n in range(30)], "【测试】通知", queue=True)

    with CaptureQueriesContext(connection) as captured:
        result = services.run_workers(batch_size=100)

    assert result.sent == 30
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    assert Message.objects.filter(sent_at__isnull=True).count() == 0
    sent_updates = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("UPDATE") and "= 'sent'" in q["sql"]
    ]
    assert len(sent_updates) == 1
    statements = [q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 10  # two passes of claims, and one update: not one per message
    names = [name for name, _ in received_signals]
    assert names.count("message_sent") == 30
    assert names.count("status_changed") == 30  # sending -> sent (claims are bulk and silent)


def test_a_report_that_overtakes_a_buffered_success_wins(locmem, received_signals):
    message = send_sms("13800138000", "【测试】通知", queue=True)
    token = services.new_claim_token()
    (claimed,) = services.claim_due(token, 10)
    buffer = services.SentBuffer(token)
    services.send_claimed(claimed, token, sent=buffer)
    services.apply_report(services.ReportData(message.message_id, "DELIVRD"))

    buffer.flush()

    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.provider_answer == {"code": 0, "data": "locmem"}
    assert [name for name, _ in received_signals].count("message_sent") == 1
    assert claimed.status == Status.DELIVERED


def test_an_account_error_halts_the_pass_and_leaves_the_rest_queued(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "APP_SECRET": "reset-in-console"}
    send_sms([f"1380013{n:04d}" for n in range(10)], "【测试】通知", queue=True)

    result = services.run_workers()

    assert (result.failed, result.retried, result.released) == (0, 1, 9)
    assert "110" in result.paused
    assert Message.objects.filter(status=Status.QUEUED, error_code=110).count() == 1
    assert set(Message.objects.values_list("status", "attempts")) == {(Status.QUEUED, 0)}


def test_the_worker_command_stops_with_the_account_error(sandbox, settings):
    from django.core.management import CommandError, call_command

    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "APP_ID": "deleted-app"}
    send_sms(["13800138000", "13900139000"], "【测试】通知", queue=True)

    with pytest.raises(CommandError, match="refused the account; the messages stay queued"):
        call_command("zhenzi_send_queued", verbosity=0)
    assert Message.objects.filter(status=Status.QUEUED).count() == 2


def test_a_backend_that_cannot_be_imported_claims_nothing(settings):
    from django.core.management import CommandError, call_command

    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": "django_zhenzi.backends.nowhere.SmsBackend"}
    Message.objects.create(number="13800138000", text="【测试】通知")

    with pytest.raises(CommandError, match="cannot be imported"):
        call_command("zhenzi_send_queued", verbosity=0)
    assert Message.objects.get().status == Status.QUEUED


def test_a_failing_pass_is_logged_and_the_loop_goes_on(locmem, monkeypatch, caplog):
    send_sms("13800138000", "【测试】通知", queue=True)
    real_work_batch = services.work_batch
    calls = []
    stop = threading.Event()

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise DatabaseError("the database went away")
        result = real_work_batch(**kwargs)
        stop.set()
        return result

    monkeypatch.setattr(services.worker, "work_batch", flaky)
    total = services.run_workers(loop=True, idle_wait=0.01, stop=stop)

    assert total.sent == 1
    assert "A worker pass failed" in caplog.text
    assert "the database went away" in caplog.text


def test_a_buffered_success_is_recorded_once_it_is_old(locmem, clock):
    message = send_sms("13800138000", "【测试】通知", queue=True)
    token = services.new_claim_token()
    (claimed,) = services.claim_due(token, 10)
    buffer = services.SentBuffer(token, max_age=1.0)
    services.send_claimed(claimed, token, sent=buffer)
    buffer.flush_if_old()
    message.refresh_from_db()
    assert message.status == Status.SENDING

    clock.move(2)
    buffer.flush_if_old()

    message.refresh_from_db()
    assert message.status == Status.SENT


def test_a_report_proving_an_unknown_message_went_out_says_it_was_sent(locmem, received_signals):
    message = send_sms("13800138000", "【测试】通知", queue=True)
    Message.objects.filter(pk=message.pk).update(status=Status.UNKNOWN)

    services.apply_report(services.ReportData(message.message_id, "DELIVRD"))

    assert [name for name, _ in received_signals] == ["status_changed", "message_sent"]


def test_a_bad_number_in_a_batch_says_it_failed(locmem, received_signals):
    send_sms(["13800138000", "12345"], "【测试】通知", queue=True)

    assert [(name, kw["message"].number) for name, kw in received_signals] == [
        ("message_failed", "12345")
    ]


def test_message_failed_says_why_in_the_active_language_and_as_data(locmem, received_signals):
    with translation.override("zh-hans"):
        send_sms(["13800138000", "12345"], "【测试】通知", queue=True)

    ((name, failed),) = received_signals
    assert name == "message_failed"
    assert failed["reason"] == "'12345' 不是中国大陆手机号码（以 1[3-9] 开头的 11 位数字）。"
    assert (failed["kind"], failed["params"]) == ("not_mobile_number", {"number": "'12345'"})
    assert failed["message"].error_text.startswith("'12345' is not a mainland China mobile")


def test_verification_code_messages_are_not_requeued(locmem):
    message = Message.objects.create(
        number="13800138000", text="验证码******", status=Status.FAILED, content_masked=True
    )

    assert services.requeue_failed(Message.objects.all()) == services.RequeueResult(0, 1, 0)
    message.refresh_from_db()
    assert message.status == Status.FAILED


@pytest.mark.parametrize("token", [42, None, {"a": "b"}])
def test_a_callback_token_of_the_wrong_type_counts_as_none(settings, token):
    from django_zhenzi.conf import zhenzi_settings

    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_TOKEN": token}
    assert zhenzi_settings.callback_tokens == ()
