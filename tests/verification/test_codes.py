"""send_code and check_code: what is sent and stored, what a check accepts, and what it costs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

import django_zhenzi
import django_zhenzi.verification.codes
from django_zhenzi import verification
from django_zhenzi.client import ZhenziInputError
from django_zhenzi.models import (
    CODE_MASK,
    Message,
    Status,
    VerificationCode,
)
from django_zhenzi.verification import check_code, send_code
from tests.verification.codes import (
    CODE_MESSAGE,
    LOCMEM,
    NUMBER,
    sent_code,
)

pytestmark = pytest.mark.django_db


# --- Sending and checking codes ---


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
