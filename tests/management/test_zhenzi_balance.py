"""zhenzi_balance."""

from __future__ import annotations

import pytest

from django_zhenzi.models import (
    BalanceSnapshot,
)
from tests.management.run_commands import (
    run,
    run_failing,
)

pytestmark = pytest.mark.django_db


# --- zhenzi_balance ------------------------------------------------------------------------------


def test_balance_prints_and_records_it(zhenzi):
    zhenzi.balance = 4321

    out, _ = run("zhenzi_balance")

    assert out == "Balance: 4321 SMS left.\n"
    assert BalanceSnapshot.objects.get().balance == 4321


def test_balance_above_32_bits_is_printed_and_recorded(zhenzi):
    zhenzi.balance = 2**31 + 7  # an IntegerField overflows on PostgreSQL

    out, _ = run("zhenzi_balance")

    assert out == f"Balance: {2**31 + 7} SMS left.\n"
    assert BalanceSnapshot.objects.get().balance == 2**31 + 7


def test_balance_on_a_backend_without_account(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": "django_zhenzi.backends.dummy.SmsBackend"}

    _, _, error = run_failing("zhenzi_balance")

    assert error.startswith("The configured backend has no account balance:")
    assert BalanceSnapshot.objects.count() == 0


def test_balance_with_wrong_secret_explains_without_the_secret(zhenzi, settings):
    secret = "not-the-right-secret-42"
    settings.ZHENZI = {**settings.ZHENZI, "APP_SECRET": secret}

    out, err, error = run_failing("zhenzi_balance")

    assert "Zhenzi error 110 on /account/balance.do: Wrong appSecret" in error
    assert "Check ZHENZI['APP_SECRET']" in error  # the hint
    assert secret not in out + err + error
    assert BalanceSnapshot.objects.count() == 0


def test_balance_when_the_provider_cannot_be_reached(settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": "http://127.0.0.1:9"}

    _, _, error = run_failing("zhenzi_balance")

    assert error.startswith("Could not read the balance: Could not reach http://127.0.0.1:9")
