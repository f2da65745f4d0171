"""A refusal of the whole account (no balance, wrong credentials) pauses sending: the messages
stay queued, their attempts not counted, until the account works again. Through the sandbox."""

from __future__ import annotations

import io
import os
import signal
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from django_zhenzi import send_sms, services
from django_zhenzi.models import Message, Status
from django_zhenzi.sandbox.provider import BALANCE_PATH, SEND_PATH
from django_zhenzi.verification import send_code
from tests.workers import wait_until, worker_thread

NUMBERS = ["13800138000", "13900139000", "13700137000"]
TEXT = "【测试】您的订单已发货"


@pytest.fixture
def zhenzi(settings, sandbox):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox


def send_requests(sandbox) -> int:
    return sandbox.requests_by_endpoint[SEND_PATH]


def rows() -> list[tuple[str, int, int | None]]:
    return list(Message.objects.order_by("pk").values_list("status", "attempts", "error_code"))


@pytest.mark.django_db
def test_no_balance_pauses_the_pass_and_keeps_every_message_queued(zhenzi):
    queued = send_sms(NUMBERS, TEXT, queue=True)
    zhenzi.balance = 0

    result = services.run_workers()

    assert "108" in result.paused
    assert (result.sent, result.failed, result.retried, result.released) == (0, 0, 1, 2)
    assert send_requests(zhenzi) == 1  # the first refusal ends the pass
    assert rows() == [
        (Status.QUEUED, 0, 108),  # the one tried: its refusal kept, the attempt not counted
        (Status.QUEUED, 0, None),
        (Status.QUEUED, 0, None),
    ]
    assert zhenzi.messages == []

    with pytest.raises(CommandError, match="the messages stay queued"):
        call_command("zhenzi_send_queued", verbosity=0)
    assert {status for status, _attempts, _code in rows()} == {Status.QUEUED}
    assert {attempts for _status, attempts, _code in rows()} == {0}

    zhenzi.balance = 1000
    result = services.run_workers()

    assert (result.sent, result.paused) == (3, "")
    assert rows() == [(Status.SENT, 1, None)] * 3
    for message in queued:
        assert zhenzi.accepted_count(message.message_id) == 1
    assert len(zhenzi.messages) == 3


@pytest.mark.django_db
def test_account_works_reads_the_balance(zhenzi, settings):
    zhenzi.balance = 0
    assert services.account_works() is False

    zhenzi.balance = 1000
    assert services.account_works() is True

    settings.ZHENZI = {**settings.ZHENZI, "APP_SECRET": "reset-in-the-console"}
    assert services.account_works() is False
    assert zhenzi.requests_by_endpoint[SEND_PATH] == 0  # asking costs no message


@pytest.mark.django_db
def test_account_works_with_a_backend_that_has_no_account(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": "django_zhenzi.backends.dummy.SmsBackend"}
    assert services.account_works() is True


@pytest.mark.django_db(transaction=True)
def test_a_looping_worker_waits_out_the_empty_balance_and_resumes_by_itself(zhenzi):
    queued = send_sms(NUMBERS, TEXT, queue=True)
    zhenzi.balance = 0
    paused = threading.Event()

    def on_batch(result: services.PassResult) -> None:
        if result.paused:
            paused.set()

    with worker_thread(idle_wait=0.05, account_wait=0.05, on_batch=on_batch) as totals:
        assert paused.wait(10)
        checks = zhenzi.requests_by_endpoint[BALANCE_PATH]
        assert wait_until(lambda: zhenzi.requests_by_endpoint[BALANCE_PATH] >= checks + 3, 10)
        # Paused: it checks the balance, and sends nothing more.
        assert send_requests(zhenzi) == 1
        assert {status for status, _attempts, _code in rows()} == {Status.QUEUED}

        zhenzi.balance = 1000
        assert wait_until(lambda: Message.objects.filter(status=Status.SENT).count() == 3, 10)
    assert rows() == [(Status.SENT, 1, None)] * 3
    for message in queued:
        assert zhenzi.accepted_count(message.message_id) == 1
        assert zhenzi.request_count(message.message_id) == (2 if message == queued[0] else 1)
    (total,) = totals
    assert total.sent == 3
    assert total.paused == ""  # it was paused, but no longer when it stopped


@pytest.mark.django_db(transaction=True)
def test_a_looping_worker_stopped_while_paused_says_so(zhenzi):
    send_sms(NUMBERS, TEXT, queue=True)
    zhenzi.balance = 0
    stop = threading.Event()

    def stop_once_paused(result: services.PassResult) -> None:
        if result.paused:
            stop.set()

    total = services.run_workers(loop=True, account_wait=0.05, stop=stop, on_batch=stop_once_paused)

    assert "108" in total.paused
    assert {status for status, _attempts, _code in rows()} == {Status.QUEUED}


@pytest.mark.django_db(transaction=True)
def test_the_looping_command_that_resumed_exits_cleanly_on_sigterm(zhenzi):
    queued = send_sms(NUMBERS, TEXT, queue=True)
    zhenzi.balance = 0

    def top_up_then_terminate() -> None:
        try:
            # Paused: the worker reads the balance instead of sending.
            wait_until(lambda: zhenzi.requests_by_endpoint[BALANCE_PATH] >= 2, 10)
            zhenzi.balance = 1000
            wait_until(lambda: Message.objects.filter(status=Status.SENT).count() == 3, 10)
        finally:
            connections.close_all()
            os.kill(os.getpid(), signal.SIGTERM)  # the command's handler stops it cleanly

    helper = threading.Thread(target=top_up_then_terminate)
    helper.start()
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "zhenzi_send_queued",
            "--loop",
            "--account-wait=0.05",
            "--idle-wait=0.05",
            stdout=out,
            stderr=err,
        )
    finally:
        helper.join(15)

    assert "Stopping: finishing the messages in flight..." in err.getvalue()
    assert out.getvalue().startswith("sent 3, failed 0, retrying 1,")
    assert rows() == [(Status.SENT, 1, None)] * 3
    for message in queued:
        assert zhenzi.accepted_count(message.message_id) == 1


@pytest.mark.django_db
def test_a_verification_code_refused_for_no_balance_fails_and_is_never_queued(
    zhenzi, settings, django_capture_on_commit_callbacks
):
    settings.ZHENZI = {**settings.ZHENZI, "CODE_MESSAGE": "【测试】您的验证码是{code}。"}
    zhenzi.balance = 0

    with django_capture_on_commit_callbacks(execute=True):
        code = send_code(NUMBERS[0])

    message = Message.objects.get(pk=code.sms.pk)
    assert message.status == Status.FAILED
    assert message.error_code == 108
    assert message.error_text.startswith(services.MASKED_NOT_RESENT)
    zhenzi.balance = 1000
    assert services.run_workers().claimed == 0
    assert zhenzi.messages == []
    assert Message.objects.get(pk=message.pk).status == Status.FAILED
