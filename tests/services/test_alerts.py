"""The low-balance alert: one email to ADMINS and one balance_low signal per crossing, whoever
reads the balance (the services, zhenzi_balance, the admin's balance page, a paused worker),
re-armed when the balance is back; against the sandbox, the real database and locmem email."""

from __future__ import annotations

import io
import threading

import django
import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from django_zhenzi import services
from django_zhenzi.models import AlertState, BalanceSnapshot
from django_zhenzi.services import alerts
from django_zhenzi.signals import balance_low

pytestmark = pytest.mark.django_db

# Django 6.0 takes plain addresses and deprecates (name, address) pairs; 5.2 takes only pairs.
ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]


@pytest.fixture
def zhenzi(settings, sandbox):
    """The app pointed at the sandbox, a threshold of 100 and one admin to email."""
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "LOW_BALANCE_THRESHOLD": 100}
    settings.ADMINS = ADMINS
    cache.clear()
    yield sandbox
    cache.clear()


@pytest.fixture
def low_signals():
    seen: list[dict] = []

    def record(sender, signal, **kwargs):
        seen.append({"sender": sender, **kwargs})

    balance_low.connect(record, weak=False)
    yield seen
    balance_low.disconnect(record)


def test_one_email_per_crossing_then_rearmed_after_a_top_up(zhenzi, low_signals):
    zhenzi.balance = 500
    services.read_balance()
    assert mail.outbox == []

    zhenzi.balance = 80
    services.read_balance()
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["ops@example.com"]
    assert "80" in email.subject
    assert "80" in email.body and "100" in email.body
    assert low_signals == [{"sender": BalanceSnapshot, "balance": 80, "threshold": 100}]

    # Further low reads, by every reader, stay quiet.
    zhenzi.balance = 60
    services.read_balance()
    services.read_balance(record=False)
    services.cached_balance(refresh=True)
    call_command("zhenzi_balance", stdout=io.StringIO())
    assert len(mail.outbox) == 1
    assert len(low_signals) == 1

    # A top-up re-arms it; the next crossing alerts again.
    zhenzi.balance = 100
    services.read_balance()
    assert len(mail.outbox) == 1
    zhenzi.balance = 99
    services.read_balance()
    assert len(mail.outbox) == 2
    assert [signal["balance"] for signal in low_signals] == [80, 99]


def test_the_email_carries_no_secret(zhenzi, settings):
    zhenzi.balance = 3
    services.read_balance()
    (email,) = mail.outbox
    secret = settings.ZHENZI["APP_SECRET"]
    assert secret not in email.subject
    assert secret not in email.body
    assert secret not in str(email.message())


def test_zhenzi_balance_command_alerts(zhenzi):
    zhenzi.balance = 7
    call_command("zhenzi_balance", stdout=io.StringIO())
    assert len(mail.outbox) == 1


def test_admin_balance_page_alerts_once(zhenzi, admin_client):
    zhenzi.balance = 42
    assert admin_client.get("/admin/django_zhenzi/balancesnapshot/").status_code == 200
    assert admin_client.get("/admin/django_zhenzi/balancesnapshot/?refresh=1").status_code in (
        200,
        302,
    )
    assert len(mail.outbox) == 1


def test_a_paused_worker_checking_the_account_alerts(zhenzi, low_signals):
    zhenzi.balance = 0
    assert services.account_works() is False
    assert services.account_works() is False
    assert len(mail.outbox) == 1
    assert low_signals[0]["balance"] == 0


def test_no_admins_no_email_but_the_signal_still_fires(zhenzi, settings, low_signals):
    settings.ADMINS = []
    zhenzi.balance = 1
    services.read_balance()
    assert mail.outbox == []
    assert len(low_signals) == 1


def test_a_failing_mail_server_does_not_stop_the_reader(zhenzi, settings, low_signals):
    smtp = "django.core.mail.backends.smtp.EmailBackend"
    if django.VERSION >= (6, 1):
        settings.MAILERS = {
            "default": {"BACKEND": smtp, "OPTIONS": {"host": "127.0.0.1", "port": 9}}
        }
    else:
        settings.EMAIL_BACKEND = smtp
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    zhenzi.balance = 1
    assert services.read_balance() == 1
    assert len(low_signals) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_low_reads_send_one_email(settings, low_signals):
    settings.ADMINS = ADMINS
    settings.ZHENZI = {**settings.ZHENZI, "LOW_BALANCE_THRESHOLD": 100}
    start = threading.Barrier(6)
    raised: list[bool] = []

    def reader() -> None:
        try:
            start.wait()
            raised.append(alerts.balance_read(5))
        finally:
            connection.close()

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(raised) == [False] * 5 + [True]
    assert len(mail.outbox) == 1
    assert len(low_signals) == 1
    assert AlertState.objects.get(name=alerts.BALANCE_LOW).raised is True


def test_a_receiver_that_raises_does_not_stop_the_reader(zhenzi, caplog):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver broke")

    balance_low.connect(broken, weak=False)
    try:
        zhenzi.balance = 1
        assert services.read_balance() == 1
    finally:
        balance_low.disconnect(broken)
    # Ours, and (Django's default logging, DEBUG off) the receiver's error reported to ADMINS.
    assert [email.subject for email in mail.outbox if "SMS balance low" in email.subject] == [
        "[Django] SMS balance low: 1 left"
    ]
    assert "receiver broke" in caplog.text
