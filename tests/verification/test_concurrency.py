"""Codes under concurrent requests."""

from __future__ import annotations

import pytest

import django_zhenzi
import django_zhenzi.verification.codes
from django_zhenzi.models import (
    Message,
    RateLimit,
    VerificationCode,
)
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.verification import check_code, send_code
from tests.verification.codes import (
    CODE_MESSAGE,
    LOCMEM,
    NUMBER,
    run_in_threads,
    sent_code,
)

pytestmark = pytest.mark.django_db


# --- Concurrency ---------------------------------------------------------------------------------


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
