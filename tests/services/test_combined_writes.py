"""Reports of concurrent requests written together (``services.combined_writes``).

A real row lock (another connection's open UPDATE of the first message) holds the first writer
inside the database while other threads' reports arrive; they must wait, then be written in one
transaction, each call returning only once its own reports are committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from django_zhenzi import services
from django_zhenzi.models import Message, Status, StatusReport
from django_zhenzi.services import combined_writes
from tests.triggers import database_refuses
from tests.webhooks.callback_requests import make_message, status_changes
from tests.workers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FOLLOWERS = 5


class Held:
    """Another connection holding the first message's row (on SQLite: the database) until
    ``release``."""

    def __init__(self, message: Message) -> None:
        self.holding, self.released = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.hold, args=(message.pk,))
        self.thread.start()
        assert self.holding.wait(10)

    def hold(self, pk: int) -> None:
        try:
            with transaction.atomic():
                Message.objects.filter(pk=pk).update(attempts=F("attempts"))
                self.holding.set()
                self.released.wait(30)
        finally:
            connection.close()

    def release(self) -> None:
        self.released.set()
        self.thread.join(10)


class Call:
    """``apply_reports_combined`` in a thread of its own, with what it returned or raised and
    whether its reports were committed when it returned (read on its own connection)."""

    def __init__(self, message_id: str) -> None:
        self.result: list[StatusReport] | None = None
        self.error: BaseException | None = None
        self.committed = False
        self.thread = threading.Thread(target=self.run, args=(message_id,))
        self.thread.start()

    def run(self, message_id: str) -> None:
        try:
            self.result = services.apply_reports_combined(
                [services.ReportData(message_id, "DELIVRD")]
            )
            self.committed = StatusReport.objects.filter(pk=self.result[0].pk).exists()
        except BaseException as error:
            self.error = error
        finally:
            connection.close()

    def join(self) -> None:
        self.thread.join(30)
        assert not self.thread.is_alive()


def writing() -> bool:
    combiner = combined_writes._combiners.get(StatusReport.Source.CALLBACK)
    return combiner is not None and combiner.writing


def waiting() -> int:
    return len(combined_writes._combiners[StatusReport.Source.CALLBACK].waiting)


def while_a_write_is_held(
    message_ids: list[str], first: Message
) -> tuple[Call, list[Call], Callable[[], None]]:
    """The first message's report held in the database, then one call per other id, all
    waiting; returns the calls and what releases the hold."""
    held = Held(first)
    writer = Call(first.message_id)
    assert wait_until(writing, 10)
    followers = [Call(message_id) for message_id in message_ids]
    assert wait_until(lambda: waiting() == len(message_ids), 10)
    return writer, followers, held.release


def received_moments() -> set[Any]:
    return set(StatusReport.objects.values_list("received_at", flat=True))


def test_reports_arriving_during_a_write_wait_and_are_written_together(received_signals):
    first, *others = [make_message() for _ in range(FOLLOWERS + 1)]

    writer, followers, release = while_a_write_is_held([m.message_id for m in others], first)
    time.sleep(0.2)
    assert all(call.thread.is_alive() for call in [writer, *followers])  # all still waiting
    release()
    for call in [writer, *followers]:
        call.join()

    assert [call.error for call in [writer, *followers]] == [None] * (FOLLOWERS + 1)
    assert all(call.committed for call in [writer, *followers])
    # Two writes: the held one alone, then every follower in one transaction (one moment).
    assert len(received_moments()) == 2
    assert [call.result[0].message.pk for call in followers] == [m.pk for m in others]
    assert set(Message.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    assert sorted(status_changes(received_signals)) == [(Status.SENT, Status.DELIVERED)] * (
        FOLLOWERS + 1
    )
    assert not writing()


def test_a_request_the_database_refuses_fails_alone(received_signals):
    first, *others = [make_message() for _ in range(FOLLOWERS)]
    ids = [m.message_id for m in others] + ["refused-message"]

    with database_refuses(
        "django_zhenzi_statusreport", "INSERT", "NEW.reported_message_id = 'refused-message'"
    ):
        writer, followers, release = while_a_write_is_held(ids, first)
        release()
        for call in [writer, *followers]:
            call.join()

    *stored, refused = followers
    assert isinstance(refused.error, DatabaseError)
    assert [call.error for call in [writer, *stored]] == [None] * FOLLOWERS
    assert all(call.committed for call in [writer, *stored])
    assert StatusReport.objects.count() == FOLLOWERS
    assert not StatusReport.objects.filter(reported_message_id="refused-message").exists()
    assert len(status_changes(received_signals)) == FOLLOWERS


def test_inside_a_transaction_reports_are_written_at_once_alone():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has one writer: the hold blocks every write")
    first, other = make_message(), make_message()
    writer, _, release = while_a_write_is_held([], first)
    try:
        with transaction.atomic():
            stored = services.apply_reports_combined(
                [services.ReportData(other.message_id, "DELIVRD")]
            )
        assert stored[0].pk is not None
        assert writer.thread.is_alive()  # the combined writer was still held
    finally:
        release()
        writer.join()
    assert StatusReport.objects.count() == 2


def test_a_combined_write_takes_at_most_its_limit_of_reports(monkeypatch):
    monkeypatch.setattr(combined_writes, "MAX_REPORTS_PER_WRITE", 2)
    first, *others = [make_message() for _ in range(FOLLOWERS + 1)]

    writer, followers, release = while_a_write_is_held([m.message_id for m in others], first)
    release()
    for call in [writer, *followers]:
        call.join()

    assert [call.error for call in [writer, *followers]] == [None] * (FOLLOWERS + 1)
    assert len(received_moments()) == 4  # the held write, then 2 + 2 + 1
    assert StatusReport.objects.count() == FOLLOWERS + 1


def test_a_request_left_waiting_past_its_patience_writes_alone(monkeypatch):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has one writer: the hold blocks every write")
    monkeypatch.setattr(combined_writes, "PATIENCE", 0.2)
    first, other = make_message(), make_message()

    writer, (follower,), release = while_a_write_is_held([other.message_id], first)
    try:
        follower.join()  # written alone while the write ahead of it is still held
        assert follower.error is None
        assert follower.committed
        assert writer.thread.is_alive()
        assert waiting() == 0
    finally:
        release()
        writer.join()
    assert StatusReport.objects.count() == 2
