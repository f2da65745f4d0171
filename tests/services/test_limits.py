"""The abuse limits: cooldown, per-number, per-IP and site-wide caps, refusals, concurrency, the
code-request page under attack, and their system checks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import F
from django.test import Client
from django.urls import reverse

import django_zhenzi
from benchmarks import attack_codes
from django_zhenzi import send_sms, services
from django_zhenzi.client import ZhenziError
from django_zhenzi.models import (
    Message,
    RateCounter,
    RateLimit,
    RateLimitRefusal,
    VerificationCode,
)
from django_zhenzi.services import limits
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.verification import send_code
from tests.project.test_checks import VALID, ids_for, messages_for
from tests.verification.codes import CODE_MESSAGE, LOCMEM, run_in_threads

pytestmark = pytest.mark.django_db

A, B, C = "13800138000", "13900139000", "13700137000"


@pytest.fixture
def limited(settings):
    """Codes on the locmem backend with the limits given: ``limited(CODE_COOLDOWN=1, ...)``."""

    def configure(**values: float) -> None:
        settings.ZHENZI = {
            **settings.ZHENZI,
            "BACKEND": LOCMEM,
            "CODE_MESSAGE": CODE_MESSAGE,
            **values,
        }

    configure()
    return configure


def refused(function, *args, **kwargs) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        function(*args, **kwargs)
    return caught.value


def test_cooldown_between_codes_to_one_number(limited, clock):
    send_code(A)
    clock.move(20)
    refusal = refused(send_code, A, purpose="reset")
    assert (refusal.limit, refusal.subject, refusal.retry_after) == (RateLimit.CODE_COOLDOWN, A, 40)
    send_code(B)  # another number is not held up
    clock.move(40)
    send_code(A)
    assert VerificationCode.objects.count() == 3


def test_per_number_caps_per_hour_and_per_day(limited, clock):
    limited(CODE_COOLDOWN=1, LIMIT_NUMBER_PER_HOUR=2, LIMIT_NUMBER_PER_DAY=3)
    send_code(A)
    clock.move(10)
    send_code(A)
    clock.move(10)
    refusal = refused(send_code, A)
    assert (refusal.limit, refusal.retry_after) == (RateLimit.NUMBER_HOUR, 3600 - 20)
    clock.move(3600 - 20)
    send_code(A)
    clock.move(10)
    refusal = refused(send_code, A)
    assert (refusal.limit, refusal.retry_after) == (RateLimit.NUMBER_DAY, 86400 - 3610)


def test_per_ip_cap(limited, clock):
    limited(LIMIT_IP_PER_HOUR=2)
    send_code(A, client_ip="203.0.113.5")
    send_code(B, client_ip="203.0.113.5")
    refusal = refused(send_code, C, client_ip="203.0.113.5")
    assert (refusal.limit, refusal.subject) == (RateLimit.IP_HOUR, "203.0.113.5")
    assert refusal.retry_after == 3600
    send_code(C, client_ip="203.0.113.6")


def test_ipv6_clients_are_counted_by_their_64_network(limited):
    limited(LIMIT_IP_PER_HOUR=1)
    send_code(A, client_ip="2001:db8:1:2::1")
    refusal = refused(send_code, B, client_ip="2001:db8:1:2:ffff::9")
    assert refusal.subject == "2001:db8:1:2::/64"
    send_code(B, client_ip="2001:db8:1:3::1")
    assert limits.subject_for_ip("::ffff:192.0.2.7") == "192.0.2.7"


def test_site_wide_caps(limited, clock):
    limited(LIMIT_SITE_PER_MINUTE=2, LIMIT_SITE_PER_DAY=3)
    send_code(A)
    clock.move(1)
    send_code(B)
    refusal = refused(send_code, C)
    assert (refusal.limit, refusal.subject, refusal.retry_after) == (RateLimit.SITE_MINUTE, "", 59)
    clock.move(59)
    send_code(C)
    clock.move(120)
    refusal = refused(send_code, "13600136000")
    assert (refusal.limit, refusal.retry_after) == (RateLimit.SITE_DAY, 86400 - 180)


def test_the_wait_is_the_longest_among_the_limits_that_refuse(limited, clock):
    limited(CODE_COOLDOWN=60, LIMIT_NUMBER_PER_HOUR=2)
    send_code(A)
    clock.move(100)
    send_code(A)
    clock.move(30)  # the cooldown holds for 30 seconds more, the hourly cap for 3470

    refusal = refused(send_code, A)

    assert (refusal.limit, refusal.subject, refusal.retry_after) == (RateLimit.NUMBER_HOUR, A, 3470)
    assert "3470 seconds" in str(refusal)
    clock.move(30)
    assert refused(send_code, A).retry_after == 3440  # the cooldown is over, the cap is not
    clock.move(3439)
    assert refused(send_code, A).retry_after == 1
    clock.move(1)
    send_code(A)
    # Each refusal is recorded once, under the limit it names.
    assert set(RateLimitRefusal.objects.values_list("limit", flat=True)) == {RateLimit.NUMBER_HOUR}
    assert sum(RateLimitRefusal.objects.values_list("count", flat=True)) == 3


def test_the_wait_is_the_longest_of_the_number_and_the_ip_limits(limited, clock):
    limited(CODE_COOLDOWN=1, LIMIT_NUMBER_PER_HOUR=1, LIMIT_IP_PER_HOUR=1)
    send_code(A, client_ip="192.0.2.1")
    clock.move(600)
    send_code(B, client_ip="192.0.2.2")
    clock.move(100)  # A's hour ends in 2900 seconds, the IP's in 3500
    before = {(c.limit, c.subject): (c.count, c.window_start) for c in RateCounter.objects.all()}

    refusal = refused(send_code, A, client_ip="192.0.2.2")

    assert (refusal.limit, refusal.subject, refusal.retry_after) == (
        RateLimit.IP_HOUR,
        "192.0.2.2",
        3500,
    )
    after = {(c.limit, c.subject): (c.count, c.window_start) for c in RateCounter.objects.all()}
    assert after == before  # finding every refusal counted nothing
    clock.move(3499)
    assert refused(send_code, A, client_ip="192.0.2.2").limit == RateLimit.IP_HOUR
    clock.move(1)
    send_code(A, client_ip="192.0.2.2")


def test_a_refused_send_counts_nothing_and_sends_nothing(limited, clock):
    limited(LIMIT_SITE_PER_MINUTE=1)
    send_code(A, client_ip="192.0.2.1")
    before = {(c.limit, c.subject): c.count for c in RateCounter.objects.all()}

    refused(send_code, B, client_ip="192.0.2.1")

    assert {(c.limit, c.subject): c.count for c in RateCounter.objects.all()} == before
    assert not RateCounter.objects.filter(subject=B).exists()
    assert Message.objects.count() == 1
    clock.move(60)
    send_code(B, client_ip="192.0.2.1")  # nothing of the refused request was held against it


def test_refusals_are_counted_per_limit_subject_and_hour(limited, clock):
    send_code(A)
    for _ in range(3):
        refused(send_code, A)
    clock.move(3600)
    send_code(A)
    refused(send_code, A)

    rows = list(RateLimitRefusal.objects.order_by("hour").values_list("limit", "subject", "count"))
    assert rows == [("code_cooldown", A, 3), ("code_cooldown", A, 1)]
    first = RateLimitRefusal.objects.order_by("hour").first()
    assert (first.hour.minute, first.hour.second) == (0, 0)


def test_the_refusal_error():
    refusal = RateLimited(RateLimit.SITE_MINUTE, "", 42)
    assert isinstance(refusal, ZhenziError)
    assert str(refusal) == (
        "Refused by the limit on messages per minute, site-wide; try again in 42 seconds."
    )


def test_send_sms_is_not_limited_unless_asked(limited, django_capture_on_commit_callbacks):
    limited(LIMIT_NUMBER_PER_HOUR=1)
    with django_capture_on_commit_callbacks(execute=True):
        send_sms([A, A], "【测试】通知")
    assert len(django_zhenzi.outbox) == 2
    assert not RateCounter.objects.exists()


def test_every_send_can_go_through_the_limits(limited, clock):
    limited(LIMIT_ALL_SENDS=True, LIMIT_NUMBER_PER_HOUR=2, LIMIT_SITE_PER_MINUTE=4)
    send_sms([A, B, "not a number"], "【测试】通知", client_ip="192.0.2.1")
    refusal = refused(send_sms, [A, A], "【测试】通知")  # A would get 3 this hour
    assert (refusal.limit, refusal.subject) == (RateLimit.NUMBER_HOUR, A)
    refusal = refused(send_sms, [B, C, "13600136000"], "【测试】通知")  # 5 this minute
    assert refusal.limit == RateLimit.SITE_MINUTE
    assert Message.objects.count() == 3  # the refused sends stored nothing
    assert RateCounter.objects.get(limit=RateLimit.IP_HOUR).count == 2
    send_sms(C, "【测试】通知")
    assert RateCounter.objects.get(limit=RateLimit.SITE_MINUTE).count == 3
    assert Message.objects.count() == 4


# --- Concurrency ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_codes_to_many_numbers_keep_the_site_cap(settings):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": LOCMEM,
        "CODE_MESSAGE": CODE_MESSAGE,
        "LIMIT_SITE_PER_MINUTE": 7,
    }
    numbers = iter(f"1380000{index:04d}" for index in range(30))
    results = run_in_threads(30, lambda: send_code(next(numbers), client_ip="192.0.2.9"))

    assert sum(not isinstance(result, Exception) for result in results) == 7
    assert {result.limit for result in results if isinstance(result, RateLimited)} == {
        RateLimit.SITE_MINUTE
    }
    assert len(django_zhenzi.outbox) == 7
    assert RateCounter.objects.get(limit=RateLimit.IP_HOUR).count == 7
    assert RateLimitRefusal.objects.get().count == 23


@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_told_from_other_database_errors():
    """What ``check_send`` retries: a transaction the database rolled back to break a deadlock
    (two transactions taking two counters in opposite orders), nothing else."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has one writer at a time: it cannot deadlock")
    moment = services.clock.now()
    first, second = (
        RateCounter.objects.create(limit=RateLimit.SITE_DAY, subject=name, window_start=moment)
        for name in ("first", "second")
    )
    both_hold_one = threading.Barrier(2)

    def take(one: RateCounter, other: RateCounter) -> DatabaseError | None:
        try:
            with transaction.atomic():
                RateCounter.objects.filter(pk=one.pk).update(count=F("count") + 1)
                both_hold_one.wait(timeout=10)
                RateCounter.objects.filter(pk=other.pk).update(count=F("count") + 1)
        except DatabaseError as error:
            return error
        finally:
            connections.close_all()
        return None

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(take, (first, second), (second, first)))

    errors = [outcome for outcome in outcomes if outcome is not None]
    assert len(errors) == 1, outcomes
    assert limits.is_deadlock(errors[0])
    with pytest.raises(DatabaseError) as caught, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert not limits.is_deadlock(caught.value)


# --- The code-request page -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_code_request_page(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE}
    client = Client()
    page = reverse("codes:request")

    assert client.get(page).status_code == 200
    response = client.post(page, {"number": "+86 138 0013 8000"}, REMOTE_ADDR="192.0.2.4")
    assert response.status_code == 302
    (sms,) = django_zhenzi.outbox
    assert (sms.number, sms.client_ip) == (A, "192.0.2.4")

    again = client.post(page, {"number": A}, REMOTE_ADDR="192.0.2.4")
    assert again.status_code == 429
    assert 55 <= int(again["Retry-After"]) <= 60
    assert "Too many code requests. Try again in" in again.content.decode()

    code = sms.text[len("【测试】您的验证码是") :][:6]
    wrong = client.post(reverse("codes:check"), {"code": "x"})
    assert "The code is wrong or has expired" in wrong.content.decode()
    right = client.post(reverse("codes:check"), {"code": code})
    assert right.status_code == 302


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_attack_on_the_page_stays_within_the_limits(settings, clock):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE}

    result = attack_codes.run_attack(
        Client(),
        lambda value: setattr(clock, "moment", value),
        requests=600,
        ips=12,
        numbers=60,
        seconds=1800,
    )

    assert result.bounds == {
        "per number x numbers": 5 * 60,
        "per IP x IPs": 20 * 12,
        "site per minute": 30 * 30,
        "site per day": 1000,
    }
    assert 0 < result.sent <= result.theoretical_max == 240
    assert result.most_from_one_ip <= 20
    assert result.most_to_one_number <= 5
    assert result.accepted + result.refused_pages == 600
    assert sum(result.refused_by_limit.values()) == result.refused_pages


# --- Admin ---------------------------------------------------------------------------------------


def test_the_admin_lists_refusals_and_codes_without_the_code(limited, client):
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    row = send_code(A)
    refused(send_code, A)

    page = client.get(reverse("admin:django_zhenzi_ratelimitrefusal_changelist"))
    assert page.status_code == 200
    assert "cooldown between codes to one number" in page.content.decode()
    page = client.get(reverse("admin:django_zhenzi_verificationcode_change", args=[row.pk]))
    assert page.status_code == 200
    assert row.code_hash not in page.content.decode()
    assert client.get(reverse("admin:django_zhenzi_verificationcode_add")).status_code == 403


# --- System checks -------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [3, 11])
def test_e020_code_length(length):
    assert ids_for({**VALID, "CODE_LENGTH": length}) == ["django_zhenzi.E020"]


def test_e020_accepts_the_bounds():
    assert ids_for({**VALID, "CODE_LENGTH": 4}) == ids_for({**VALID, "CODE_LENGTH": 10}) == []
    assert ids_for({**VALID, "CODE_LENGTH": 0}) == ["django_zhenzi.E008"]


@pytest.mark.parametrize(
    "text",
    ["【签名】验证码", "【签名】{code}{name}", "【签名】{code}{", "【签名】{0}", "【签名】{}"],
)
def test_e021_code_message_placeholders(text):
    assert ids_for({**VALID, "CODE_MESSAGE": text}) == ["django_zhenzi.E021"]


def test_e021_accepts_code_and_minutes_and_escaped_braces():
    text = "【签名】您的验证码是{code}，{minutes}分钟内有效。{{不是占位符}}"
    assert ids_for({**VALID, "CODE_MESSAGE": text}) == []


def test_e022_template_and_message_both_set():
    config = {**VALID, "CODE_MESSAGE": "【签名】{code}", "CODE_TEMPLATE_ID": "1001"}
    assert ids_for(config) == ["django_zhenzi.E022"]


def test_w020_a_short_window_cap_above_the_long_one():
    messages = messages_for({**VALID, "LIMIT_NUMBER_PER_HOUR": 20, "LIMIT_SITE_PER_MINUTE": 5000})
    assert [message.id for message in messages] == ["django_zhenzi.W020"] * 2
    assert "ZHENZI['LIMIT_NUMBER_PER_HOUR'] (20) is above" in str(messages[0].msg)
    assert all(str(message.hint) for message in messages)


def test_limit_settings_are_type_checked():
    assert ids_for({**VALID, "LIMIT_ALL_SENDS": 1}) == ["django_zhenzi.E003"]
    assert ids_for({**VALID, "LIMIT_IP_PER_HOUR": 2.5}) == ["django_zhenzi.E003"]
    assert ids_for({**VALID, "CODE_COOLDOWN": 0}) == ["django_zhenzi.E008"]


def test_the_default_limits_pass_the_checks():
    assert ids_for({**VALID, "CODE_TEMPLATE_ID": "1001"}) == []
