"""Verification codes: sending, checking, masking, the forms, and concurrency."""

from __future__ import annotations

import logging
import re
import threading
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.urls import reverse

import django_zhenzi
import django_zhenzi.verification.codes
from django_zhenzi import services, verification
from django_zhenzi.client import ZhenziInputError
from django_zhenzi.models import (
    CODE_MASK,
    Message,
    RateLimit,
    Status,
    StatusReport,
    VerificationCode,
)
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.verification import check_code, send_code
from django_zhenzi.verification.forms import (
    CodeRequestForm,
    PhoneNumberField,
    VerificationCodeForm,
    wait_text,
)

LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
CODE_MESSAGE = "【测试】您的验证码是{code}，{minutes}分钟内有效。"
NUMBER = "13800138000"

pytestmark = pytest.mark.django_db


@pytest.fixture
def codes(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE}


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``committed(function, ...)`` calls it and runs the on-commit callbacks it registered, as
    a real commit would (each test runs in a transaction that never commits)."""

    def call(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return call


def sent_code(index: int = -1) -> str:
    """The code in a message the locmem backend received."""
    sms = django_zhenzi.outbox[index]
    text = sms.text or " ".join(sms.template_params)
    return re.search(r"\d{6}", text).group()


def test_send_code_sends_the_code_and_stores_only_a_mask_and_a_hash(codes, committed):
    row = committed(send_code, "+86 138-0013-8000", purpose="signup", client_ip="203.0.113.9")

    (sms,) = django_zhenzi.outbox
    code = sent_code()
    assert sms.text == CODE_MESSAGE.format(code=code, minutes=5)
    assert sms.number == NUMBER
    assert sms.client_ip == "203.0.113.9"
    message = Message.objects.get()
    assert message.text == CODE_MESSAGE.format(code=CODE_MASK, minutes=5)
    assert message.status == Status.SENT
    assert message.attempts == 1
    assert sms.message_id == message.message_id
    row = VerificationCode.objects.get(pk=row.pk)
    assert row.sms == message
    assert (row.number, row.purpose, row.state) == (NUMBER, "signup", "active")
    assert row.code_hash == verification.codes.code_hash(NUMBER, "signup", code)
    assert len(row.code_hash) == 64
    assert row.expires_at - row.created_at == timedelta(seconds=300)
    stored = [str(value) for value in Message.objects.values().get().values()]
    stored += [str(value) for value in VerificationCode.objects.values().get().values()]
    assert not any(code in value for value in stored)


def test_codes_are_random_digits_of_the_configured_length(codes, settings, clock, committed):
    settings.ZHENZI = {**settings.ZHENZI, "CODE_LENGTH": 8, "CODE_COOLDOWN": 1}
    for _ in range(5):
        committed(send_code, NUMBER)
        clock.move(2)
    sent = [re.search(r"\d+", sms.text).group() for sms in django_zhenzi.outbox]
    assert all(len(code) == 8 for code in sent)
    assert len(set(sent)) == 5


def test_template_codes_mask_the_parameter(sandbox, settings, committed):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "CODE_TEMPLATE_ID": "1001",
        "CODE_TTL": 600,
    }
    row = committed(send_code, NUMBER)

    (accepted,) = sandbox.messages
    code = re.search(r"\d{6}", accepted["message"]).group()
    assert accepted["templateParams"] == [code, "10"]
    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.SENT
    assert (message.template_id, message.template_params) == ("1001", [CODE_MASK, "10"])
    assert check_code(NUMBER, code)


def test_right_code_works_once(codes, committed):
    committed(send_code, NUMBER)
    code = sent_code()

    assert check_code(NUMBER, code) is True
    assert check_code(NUMBER, code) is False
    row = VerificationCode.objects.get()
    assert (row.state, row.tries) == ("used", 1)
    assert row.used_at is not None


def test_code_expires(codes, clock, committed):
    committed(send_code, NUMBER)
    code = sent_code()

    clock.move(300)
    assert check_code(NUMBER, code) is False
    clock.move(-1)
    assert check_code(NUMBER, code) is True


def test_wrong_tries_kill_the_code(codes, settings, committed):
    settings.ZHENZI = {**settings.ZHENZI, "CODE_MAX_TRIES": 3}
    committed(send_code, NUMBER)
    code = sent_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    assert check_code(NUMBER, wrong) is False
    assert check_code(NUMBER, "not a code") is False
    assert check_code(NUMBER, code) is True  # the third try

    assert VerificationCode.objects.get().tries == 3


def test_after_max_wrong_tries_the_right_code_fails(codes, settings, clock, committed):
    settings.ZHENZI = {**settings.ZHENZI, "CODE_MAX_TRIES": 3}
    committed(send_code, NUMBER)
    code = sent_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    assert [check_code(NUMBER, wrong) for _ in range(3)] == [False, False, False]
    assert check_code(NUMBER, code) is False
    assert VerificationCode.objects.get().tries == 3

    clock.move(61)
    committed(send_code, NUMBER)  # a new code starts with fresh tries
    assert check_code(NUMBER, sent_code()) is True


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def no_code(committed, clock):
    return NUMBER, "123456"


def code_for_another_purpose(committed, clock):
    committed(send_code, NUMBER, purpose="reset")
    return NUMBER, sent_code()


def wrong_code(committed, clock):
    committed(send_code, NUMBER)
    return NUMBER, wrong(sent_code())


def expired_code(committed, clock):
    committed(send_code, NUMBER)
    clock.move(300)
    return NUMBER, sent_code()


def used_code(committed, clock):
    committed(send_code, NUMBER)
    assert check_code(NUMBER, sent_code()) is True
    return NUMBER, sent_code()


def code_out_of_tries(committed, clock):
    committed(send_code, NUMBER)
    for _ in range(5):
        check_code(NUMBER, wrong(sent_code()))
    return NUMBER, sent_code()


@pytest.fixture
def hash_compares(monkeypatch) -> list[tuple[int, int]]:
    """The lengths of the two hashes of every constant-time comparison check_code makes."""
    compared: list[tuple[int, int]] = []
    compare = verification.codes.constant_time_compare

    def counted(stored: str, given: str) -> bool:
        compared.append((len(stored), len(given)))
        return compare(stored, given)

    monkeypatch.setattr(verification.codes, "constant_time_compare", counted)
    return compared


@pytest.mark.parametrize(
    "situation",
    [no_code, code_for_another_purpose, wrong_code, expired_code, used_code, code_out_of_tries],
)
def test_a_failing_check_does_the_same_work_whether_or_not_a_code_exists(
    codes, clock, committed, django_assert_num_queries, hash_compares, situation
):
    number, given = situation(committed, clock)
    hash_compares.clear()

    with django_assert_num_queries(2):  # the newest code, then a conditional UPDATE of its tries
        assert check_code(number, given) is False

    assert hash_compares == [(64, 64)]


def test_a_right_code_costs_one_more_query_to_mark_it_used(
    codes, committed, django_assert_num_queries, hash_compares
):
    committed(send_code, NUMBER)
    with django_assert_num_queries(3):
        assert check_code(NUMBER, sent_code()) is True
    assert hash_compares == [(64, 64)]


def test_purposes_are_kept_apart(codes, clock, committed):
    committed(send_code, NUMBER, purpose="login")
    login = sent_code()
    clock.move(61)  # the cooldown is per number, whatever the purpose
    committed(send_code, NUMBER, purpose="reset")
    reset = sent_code()

    assert check_code(NUMBER, login, purpose="reset") is False
    assert check_code(NUMBER, reset, purpose="login") is False
    assert check_code(NUMBER, reset, purpose="reset") is True
    assert check_code(NUMBER, login, purpose="login") is True


def test_a_newer_code_supersedes_older_ones(codes, clock, committed):
    committed(send_code, NUMBER)
    first = sent_code()
    clock.move(61)
    committed(send_code, NUMBER)
    second = sent_code()

    assert check_code(NUMBER, first) is False
    assert check_code(NUMBER, second) is True
    assert sorted(VerificationCode.objects.values_list("state", flat=True)) == [
        "superseded",
        "used",
    ]


def test_codes_belong_to_their_number(codes, clock, committed):
    committed(send_code, NUMBER)
    code = sent_code()
    assert check_code("13900139000", code) is False
    assert check_code("not a number", code) is False
    assert check_code(f" {NUMBER} ", f" {code[:3]} {code[3:]} ") is True


def test_the_compare_is_constant_time(codes, monkeypatch, committed):
    calls = []
    real = verification.codes.constant_time_compare

    def recording(expected, given):
        calls.append((expected, given))
        return real(expected, given)

    monkeypatch.setattr(verification.codes, "constant_time_compare", recording)
    row = committed(send_code, NUMBER)
    code = sent_code()

    assert check_code(NUMBER, "000000" if code != "000000" else "111111") is False
    assert check_code(NUMBER, code) is True
    assert len(calls) == 2
    assert all(expected == row.code_hash for expected, _ in calls)
    assert calls[1][1] == row.code_hash


def test_a_bad_purpose_is_refused(codes):
    with pytest.raises(ZhenziInputError) as caught:
        send_code(NUMBER, purpose="Log in")
    assert caught.value.field == "purpose"
    with pytest.raises(ZhenziInputError):
        check_code(NUMBER, "123456", purpose="")
    assert Message.objects.count() == 0


def test_no_content_configured(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    with pytest.raises(ImproperlyConfigured, match="CODE_MESSAGE"):
        send_code(NUMBER)
    assert VerificationCode.objects.count() == 0


@pytest.mark.parametrize(
    "text", ["【测试】没有验证码", "【测试】{code} {name}", "【测试】{code} {"]
)
def test_a_bad_code_message_is_refused(codes, text):
    with pytest.raises(ZhenziInputError) as caught:
        send_code(NUMBER, message=text)
    assert caught.value.field == "message"
    assert Message.objects.count() == 0


def test_a_per_call_message_overrides_the_setting(codes, committed):
    committed(send_code, NUMBER, purpose="reset", message="【测试】重置密码验证码{code}")
    assert re.fullmatch(r"【测试】重置密码验证码\d{6}", django_zhenzi.outbox[0].text)
    assert Message.objects.get().text == "【测试】重置密码验证码******"


def test_a_rollback_sends_nothing(codes, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        send_code(NUMBER)
        raise RuntimeError("the view failed")
    assert django_zhenzi.outbox == []
    assert VerificationCode.objects.count() == 0
    assert Message.objects.count() == 0


def test_inside_a_transaction_the_code_goes_after_commit(codes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        row = send_code(NUMBER)
        assert django_zhenzi.outbox == []
        assert Message.objects.get().status == Status.SENDING
    assert len(django_zhenzi.outbox) == 1
    assert Message.objects.get(pk=row.sms.pk).status == Status.SENT


# --- At most once, and never the mask ------------------------------------------------------------


@pytest.fixture
def sandboxed_codes(sandbox, settings):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "CODE_MESSAGE": CODE_MESSAGE,
        "RECONCILE_DELAY": 10,
    }
    return sandbox


def test_a_transient_failure_fails_the_code_message_instead_of_queueing_it(
    sandboxed_codes, committed
):
    sandboxed_codes.fail_next("code1000")
    row = committed(send_code, NUMBER)

    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.FAILED
    assert message.error_text.startswith(services.MASKED_NOT_RESENT)
    assert message.error_code == 1000
    assert services.run_workers().claimed == 0
    assert sandboxed_codes.messages == []


def test_an_ambiguous_code_message_is_reconciled_and_never_resent(
    sandboxed_codes, clock, committed
):
    sandboxed_codes.fail_next("http500")  # ambiguous, but the provider never processed it
    row = committed(send_code, NUMBER)
    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.UNKNOWN

    clock.move(11)
    assert services.run_workers().reconciled == 1  # not found yet: asked again later
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN
    clock.move(600)  # past RECONCILE_SETTLE: "not found" is believed
    assert services.run_workers().reconciled == 1
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_text.startswith(services.MASKED_NOT_RESENT)
    assert services.run_workers().claimed == 0
    assert sandboxed_codes.messages == []


def test_a_code_message_that_arrived_is_reconciled_with_its_record_masked(
    sandboxed_codes, clock, committed
):
    sandboxed_codes.fail_next("cut")  # processed, but the answer is lost
    row = committed(send_code, NUMBER)
    (accepted,) = sandboxed_codes.messages
    code = re.search(r"\d{6}", accepted["message"]).group()
    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.UNKNOWN

    clock.move(11)
    assert services.run_workers().reconciled == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    record = message.provider_answer["findSmsByMessageId"]
    assert record["messageId"] == message.message_id
    assert record["message"] == CODE_MASK
    assert code not in str(message.provider_answer)
    assert sandboxed_codes.request_count(message.message_id) == 1
    assert check_code(NUMBER, code) is True


def test_a_requeued_code_message_fails_rather_than_send_the_mask(sandboxed_codes, committed):
    row = committed(send_code, NUMBER)
    Message.objects.filter(pk=row.sms.pk).update(status=Status.QUEUED, claim_token="")

    services.run_workers()
    message = Message.objects.get(pk=row.sms.pk)
    assert message.status == Status.FAILED
    assert message.error_text == services.MASKED_NOT_RESENT
    assert len(sandboxed_codes.messages) == 1
    assert all(CODE_MASK not in sent["message"] for sent in sandboxed_codes.messages)


def test_reports_of_code_messages_are_stored_masked(sandboxed_codes, committed):
    row = committed(send_code, NUMBER)
    code = re.search(r"\d{6}", sandboxed_codes.messages[0]["message"]).group()
    message_id = row.sms.message_id

    # The provider's callback body is not published: one that echoes the text is masked too.
    report = services.apply_report(
        services.ReportData(
            message_id,
            "DELIVRD",
            NUMBER,
            {"messageId": message_id, "status": "DELIVRD", "content": f"验证码{code}"},
        )
    )
    assert report.payload == {"messageId": message_id, "status": "DELIVRD", "content": CODE_MASK}
    assert Message.objects.get(pk=row.sms.pk).status == Status.DELIVERED
    assert not StatusReport.objects.filter(payload__icontains=code).exists()


def test_polled_records_of_code_messages_are_stored_masked(sandbox, settings, clock, committed):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "CODE_MESSAGE": CODE_MESSAGE}
    sandbox.report_delay = 0
    row = committed(send_code, NUMBER)
    code = re.search(r"\d{6}", sandbox.messages[0]["message"]).group()

    clock.move(1)
    assert services.sync_statuses(older_than=0) == 1
    (report,) = StatusReport.objects.filter(message=row.sms)
    assert report.payload["message"] == CODE_MASK
    assert report.payload["messageId"] == row.sms.message_id
    assert code not in str(report.payload)


def test_the_code_never_reaches_the_logs(sandboxed_codes, caplog, committed):
    caplog.set_level(logging.DEBUG)
    committed(send_code, NUMBER, client_ip="203.0.113.9")
    code = re.search(r"\d{6}", sandboxed_codes.messages[0]["message"]).group()
    check_code(NUMBER, "000000" if code != "000000" else "111111")
    check_code(NUMBER, code)

    assert caplog.records
    assert not [record for record in caplog.records if code in record.getMessage()]


def test_the_admin_never_shows_the_code(codes, client, committed):
    if Message not in admin.site._registry:
        pytest.skip("the Message admin is not registered")
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    row = committed(send_code, NUMBER)
    code = sent_code()

    for url in (
        reverse("admin:django_zhenzi_message_change", args=[row.sms.pk]),
        reverse("admin:django_zhenzi_message_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert code not in response.content.decode()
        assert CODE_MASK in response.content.decode()


# --- Forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [("13800138000", NUMBER), ("+86 138 0013 8000", NUMBER), ("0086-138-0013-8000", NUMBER)],
)
def test_phone_number_field_normalizes(raw, cleaned):
    assert PhoneNumberField().clean(raw) == cleaned


@pytest.mark.parametrize("raw", ["12345", "23800138000", "13800138000,13900139000"])
def test_phone_number_field_refuses_other_input(raw):
    with pytest.raises(Exception, match="mainland China mobile number"):
        PhoneNumberField().clean(raw)


def test_code_request_form_sends_a_code(codes, committed):
    form = CodeRequestForm({"number": "+86 138 0013 8000"}, purpose="signup", client_ip="192.0.2.1")
    assert form.is_valid()
    row = committed(form.send)
    assert row is not None
    assert (row.number, row.purpose, row.client_ip) == (NUMBER, "signup", "192.0.2.1")
    assert len(django_zhenzi.outbox) == 1


def test_code_request_form_shows_the_wait_when_refused(codes, clock, committed):
    first = CodeRequestForm({"number": NUMBER})
    assert first.is_valid() and committed(first.send)
    clock.move(15)

    second = CodeRequestForm({"number": NUMBER})
    assert second.is_valid()
    assert committed(second.send) is None
    assert not second.is_valid()
    assert second.retry_after == 45
    assert second.non_field_errors() == ["Too many code requests. Try again in 45 seconds."]
    assert second.errors.as_data()["__all__"][0].code == "rate_limited"
    assert len(django_zhenzi.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_code_request_form_reports_a_failed_send(sandboxed_codes):
    # Outside a transaction (no ATOMIC_REQUESTS) the code is sent before send() returns.
    sandboxed_codes.fail_next("code1000")
    form = CodeRequestForm({"number": NUMBER})
    assert form.is_valid()
    assert form.send() is None
    assert form.non_field_errors() == ["The code could not be sent. Try again later."]


def test_code_request_form_refuses_a_bad_number(codes):
    form = CodeRequestForm({"number": "12345"})
    assert not form.is_valid()
    assert "number" in form.errors
    assert django_zhenzi.outbox == []


def test_verification_code_form(codes, committed):
    committed(send_code, NUMBER, purpose="reset")
    code = sent_code()

    wrong = VerificationCodeForm({"code": "12"}, number=NUMBER, purpose="reset")
    assert not wrong.is_valid()
    assert wrong.errors["code"] == [
        "The code is wrong or has expired. Check it, or ask for a new one."
    ]
    right = VerificationCodeForm({"code": code}, number=NUMBER, purpose="reset")
    assert right.is_valid()
    assert right.is_valid()  # validated once: the code is not checked (and used) twice
    again = VerificationCodeForm({"code": code}, number=NUMBER, purpose="reset")
    assert not again.is_valid()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1 second"), (45, "45 seconds"), (119, "119 seconds"), (121, "3 minutes"),
     (3599, "60 minutes"), (7200, "2 hours"), (86399, "24 hours")],
)  # fmt: skip
def test_wait_text(seconds, text):
    assert wait_text(seconds) == text


# --- Concurrency ---------------------------------------------------------------------------------


def run_in_threads(count: int, work) -> list:
    """Run ``work()`` in ``count`` threads released at once; their results, or errors."""
    start = threading.Barrier(count)
    results: list = []
    lock = threading.Lock()

    def run() -> None:
        try:
            start.wait(timeout=30)
            outcome = work()
        except Exception as error:  # the test inspects every outcome
            outcome = error
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_send_one_code(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE}

    results = run_in_threads(50, lambda: send_code(NUMBER, client_ip="198.51.100.7"))

    sent = [result for result in results if isinstance(result, VerificationCode)]
    refused = [result for result in results if isinstance(result, RateLimited)]
    assert len(sent) == 1, [type(result).__name__ for result in results]
    assert len(refused) == 49
    assert {refusal.limit for refusal in refused} == {RateLimit.CODE_COOLDOWN}
    assert len(django_zhenzi.outbox) == 1
    assert Message.objects.count() == VerificationCode.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_of_the_right_code_pass_once(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE}
    send_code(NUMBER)
    code = sent_code()

    results = run_in_threads(20, lambda: check_code(NUMBER, code))

    assert sorted(results) == [False] * 19 + [True]
