"""The verification forms."""

from __future__ import annotations

import pytest

import django_zhenzi
import django_zhenzi.verification.codes
from django_zhenzi.verification import send_code
from django_zhenzi.verification.forms import (
    CodeRequestForm,
    PhoneNumberField,
    VerificationCodeForm,
    wait_text,
)
from tests.verification.codes import (
    NUMBER,
    sent_code,
)

pytestmark = pytest.mark.django_db


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
