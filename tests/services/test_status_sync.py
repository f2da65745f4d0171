"""``zhenzi_status --sync``: polling findSmsByMessageId for sent messages without a final status.

A message the provider never finalises is asked again only once it is twice as old (the wait
doubles), and messages never polled go first, so stuck ones cannot starve newer ones. Through
the sandbox, whose records say "sending" until their report_delay (real seconds) has passed; the
services' clock is moved instead of waiting.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command

from django_zhenzi import send_sms, services
from django_zhenzi.models import Message, Status
from django_zhenzi.sandbox.provider import FIND_PATH

pytestmark = pytest.mark.django_db

TEXT = "【测试】您的订单已发货"
SYNC_AFTER = 600
NEVER = 10**6  # seconds: a report_delay the provider never reaches during a test


@pytest.fixture
def zhenzi(settings, sandbox):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "STATUS_SYNC_AFTER": SYNC_AFTER}
    return sandbox


def sent(sandbox, numbers: list[str], *, final_after: float) -> list[Message]:
    """Messages sent now (by the services' clock); the provider gives them a final status
    ``final_after`` real seconds later."""
    sandbox.report_delay = final_after
    rows = send_sms(numbers, TEXT, queue=True)
    assert services.run_workers().sent == len(numbers)
    return [Message.objects.get(pk=row.pk) for row in rows]


def sync(*args: str) -> str:
    out = io.StringIO()
    call_command("zhenzi_status", "--sync", *args, stdout=out)
    return out.getvalue()


def lookups(sandbox) -> int:
    return sandbox.requests_by_endpoint[FIND_PATH]


def test_a_message_never_finalised_is_asked_again_when_twice_as_old(zhenzi, clock):
    (stuck,) = sent(zhenzi, ["13800138000"], final_after=NEVER)
    assert stuck.sent_at == clock.start
    asked_at = []

    for second in [s for hundred in range(0, 5000, 100) for s in (hundred - 1, hundred) if s >= 0]:
        clock.at(second)  # a run at each hundred seconds, and one a second before
        before = lookups(zhenzi)
        assert sync() == "0 messages got a final status from the provider.\n"
        if lookups(zhenzi) > before:
            asked_at.append(second)
            stuck.refresh_from_db()
            assert stuck.polled_at == clock.moment
            assert stuck.next_poll_at == clock.start + timedelta(seconds=2 * second)

    assert asked_at == [600, 1200, 2400, 4800]  # the wait doubles with the message's age
    stuck.refresh_from_db()
    assert stuck.status == Status.SENT


def test_with_older_than_the_wait_also_doubles_with_the_age(zhenzi, clock):
    (message,) = sent(zhenzi, ["13800138000"], final_after=NEVER)
    clock.at(10)

    sync("--older-than", "5")

    message.refresh_from_db()
    assert message.polled_at == clock.moment
    assert message.next_poll_at == clock.moment + timedelta(seconds=10)  # twice as old
    clock.at(19)
    sync("--older-than", "5")
    assert lookups(zhenzi) == 1
    clock.at(20)
    sync("--older-than", "5")
    assert lookups(zhenzi) == 2


def test_stuck_messages_do_not_starve_a_newer_one(zhenzi, clock):
    stuck = sent(zhenzi, [f"1380013800{n}" for n in range(5)], final_after=NEVER)
    clock.at(100)
    (newer,) = sent(zhenzi, ["13900139000"], final_after=0)  # final at the provider at once
    clock.at(SYNC_AFTER + 100)

    outputs = []
    for _ in range(3):
        outputs.append(sync("--limit", "2"))
        newer.refresh_from_db()
        if newer.status != Status.SENT:
            break

    assert newer.status == Status.DELIVERED
    assert outputs[-1] == "1 message got a final status from the provider.\n"
    assert lookups(zhenzi) == 6  # each asked once: none of the stuck ones twice
    for message in stuck:
        message.refresh_from_db()
        assert message.status == Status.SENT
        assert message.polled_at == clock.moment
        assert message.next_poll_at == clock.moment + timedelta(seconds=SYNC_AFTER + 100)


def test_a_message_never_polled_goes_before_stuck_ones_due_again(zhenzi, clock):
    stuck = sent(zhenzi, [f"1380013800{n}" for n in range(5)], final_after=NEVER)
    clock.at(SYNC_AFTER)
    sync()  # every stuck one asked once: due again at 2 x 600 s
    assert lookups(zhenzi) == 5
    clock.at(SYNC_AFTER)
    (newer,) = sent(zhenzi, ["13900139000"], final_after=0)

    clock.at(2 * SYNC_AFTER)  # the stuck ones are due again, and the newer one for the first time
    out = sync("--limit", "1")

    assert out == "1 message got a final status from the provider.\n"
    newer.refresh_from_db()
    assert newer.status == Status.DELIVERED
    for message in stuck:
        message.refresh_from_db()
        assert message.polled_at == clock.start + timedelta(seconds=SYNC_AFTER)


def test_stuck_messages_are_asked_again_least_recently_polled_first(zhenzi, clock):
    first, second, third = sent(
        zhenzi, ["13800138000", "13800138001", "13800138002"], final_after=NEVER
    )
    clock.at(SYNC_AFTER)
    sync("--limit", "1")  # the oldest (by id: all were sent together)
    clock.at(SYNC_AFTER + 10)
    sync("--limit", "2")  # the two others, later

    polled = {m.pk: m.polled_at for m in Message.objects.all()}
    assert polled[first.pk] < polled[second.pk] == polled[third.pk]
    clock.at(10 * SYNC_AFTER)  # all due again
    sync("--limit", "1")

    first.refresh_from_db()
    assert first.polled_at == clock.moment  # the least recently polled went first
    for message in (second, third):
        message.refresh_from_db()
        assert message.polled_at == clock.start + timedelta(seconds=SYNC_AFTER + 10)


def test_a_failed_look_up_puts_its_message_back_in_line(zhenzi, clock):
    """The first look-up error ends the run; the message it failed on waits its turn again, so
    one whose look-up keeps failing cannot stop every later run at the same place."""
    first, second = sent(zhenzi, ["13800138000", "13900139000"], final_after=NEVER)
    clock.at(SYNC_AFTER)
    zhenzi.fail_next("http500")

    sync()  # stops at the first message, on the provider's error

    first.refresh_from_db()
    assert first.next_poll_at is not None and first.next_poll_at > clock.moment
    before = lookups(zhenzi)
    zhenzi.fail_next("http500")
    sync("--limit", "1")  # the next run asks the other message first...
    second.refresh_from_db()
    assert lookups(zhenzi) == before + 1
    assert second.polled_at == clock.moment
