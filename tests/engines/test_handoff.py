"""Dispatch through Django's Tasks framework with the immediate backend (the fast tier): what is
handed over and when, what a task does when it comes twice or early, priorities, and the sweep."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

import django_zhenzi
from django_zhenzi import services
from django_zhenzi.api import send_sms
from django_zhenzi.client import ZhenziInputError
from django_zhenzi.engines import django_tasks as engine
from django_zhenzi.models import Message, Status
from django_zhenzi.priority import Priority
from django_zhenzi.services import engine_work
from django_zhenzi.verification.codes import send_code

try:
    from django.tasks.signals import task_enqueued
except ImportError:
    from django_tasks.signals import task_enqueued

LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
TEXT = "【测试】您的订单已发货"
NUMBERS = [f"1380000{index:04d}" for index in range(45)]


@pytest.fixture
def tasks_dispatch(settings) -> None:
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "DISPATCH": "tasks"}


@pytest.fixture
def enqueued() -> Iterator[list]:
    """Every task result enqueued during the test (the immediate backend runs each at once)."""
    results: list = []

    def record(sender, task_result, **kwargs):
        results.append(task_result)

    task_enqueued.connect(record)
    yield results
    task_enqueued.disconnect(record)


def sent_numbers() -> list[str]:
    return [sms.number for sms in django_zhenzi.outbox]


def finished_well(results: list) -> bool:
    return all(result.status == "SUCCESSFUL" for result in results)


@pytest.mark.django_db(transaction=True)
def test_queued_messages_are_sent_by_a_task_once_the_transaction_commits(tasks_dispatch, enqueued):
    with transaction.atomic():
        rows = send_sms(NUMBERS, TEXT, queue=True)
        assert enqueued == [] and django_zhenzi.outbox == []
    assert sent_numbers() == NUMBERS
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    # DISPATCH_BATCH_SIZE (20) messageIds a task, and nothing but messageIds.
    assert [list(result.args) for result in enqueued] == [
        [[row.message_id for row in rows[start : start + 20]]] for start in (0, 20, 40)
    ]
    assert all(result.kwargs == {} for result in enqueued)
    assert finished_well(enqueued)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_send_hands_nothing_over(tasks_dispatch, enqueued):
    with pytest.raises(RuntimeError), transaction.atomic():
        send_sms(NUMBERS[:3], TEXT, queue=True)
        raise RuntimeError("rollback")
    assert enqueued == [] and django_zhenzi.outbox == [] and not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_built_in_worker_is_the_default_and_nothing_is_handed_over(settings, enqueued):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    send_sms(NUMBERS[:3], TEXT, queue=True)
    assert enqueued == [] and django_zhenzi.outbox == []
    assert services.run_workers().sent == 3


@pytest.mark.django_db(transaction=True)
def test_a_task_delivered_twice_sends_once(settings, enqueued):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}  # queued by the worker's rules
    rows = send_sms(NUMBERS[:5], TEXT, queue=True)
    ids = [row.message_id for row in rows]
    first = engine.send_queued.enqueue(ids)
    second = engine.send_queued.enqueue(ids)
    assert sent_numbers() == NUMBERS[:5]
    assert first.return_value["sent"] == 5
    assert second.return_value == {}  # claimed nothing
    assert finished_well([first, second])


@pytest.mark.django_db(transaction=True)
def test_an_early_task_leaves_its_messages_and_the_sweep_sends_them(settings, clock):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    rows = send_sms(NUMBERS[:3], TEXT, queue=True)
    Message.objects.update(next_attempt_at=clock.moment + timedelta(seconds=30))

    assert engine.send_queued.enqueue([row.message_id for row in rows]).return_value == {}
    assert django_zhenzi.outbox == []
    assert set(Message.objects.values_list("status", flat=True)) == {Status.QUEUED}

    clock.move(30 + engine_work.SWEEP_GRACE - 1)
    assert engine.sweep.enqueue().return_value == {}  # due, but its task may still come
    clock.move(1)
    assert engine.sweep.enqueue().return_value["sent"] == 3
    assert sent_numbers() == NUMBERS[:3]


@pytest.mark.django_db(transaction=True)
def test_a_retry_on_a_backend_that_cannot_delay_is_left_to_the_sweep(settings, clock, enqueued):
    # The test settings' API_URL is a closed port: a connection error, retried after a delay.
    settings.ZHENZI = {**settings.ZHENZI, "DISPATCH": "tasks", "RETRY_DELAY": 10}
    message = send_sms(NUMBERS[0], TEXT, queue=True)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.QUEUED, 1)
    assert message.next_attempt_at > clock.moment
    assert len(enqueued) == 1  # the first send only: the immediate backend has no run_after

    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    clock.moment = message.next_attempt_at + timedelta(seconds=engine_work.SWEEP_GRACE)
    assert engine.sweep.enqueue().return_value["sent"] == 1
    assert sent_numbers() == [NUMBERS[0]]


@pytest.mark.django_db(transaction=True)
def test_an_engine_that_refuses_the_task_loses_nothing(settings, clock, enqueued, caplog):
    settings.TASKS = {
        **settings.TASKS,
        "refusing": {"BACKEND": settings.TASKS["default"]["BACKEND"], "QUEUES": ["other"]},
    }
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": LOCMEM,
        "DISPATCH": "tasks",
        "TASKS_BACKEND": "refusing",
    }
    with caplog.at_level(logging.ERROR, logger="django_zhenzi"):
        rows = send_sms(NUMBERS[:3], TEXT, queue=True)
    assert "Could not hand 3 queued messages to tasks" in caplog.text
    assert TEXT not in caplog.text
    assert [row.status for row in rows] == [Status.QUEUED] * 3
    clock.move(engine_work.SWEEP_GRACE)
    assert engine_work.sweep().sent == 3


@pytest.mark.django_db(transaction=True)
def test_each_priority_goes_to_its_queue_with_its_task_priority(settings, enqueued):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": LOCMEM,
        "DISPATCH": "tasks",
        "DISPATCH_QUEUES": {"high": "sms-high", "bulk": "sms-bulk"},
    }
    for priority in ("high", "normal", "bulk"):
        send_sms(NUMBERS[0], TEXT, queue=True, priority=priority)
    assert [(r.task.queue_name, r.task.priority) for r in enqueued] == [
        ("sms-high", 50),
        ("default", 0),
        ("sms-bulk", -50),
    ]
    assert list(Message.objects.order_by("id").values_list("priority", flat=True)) == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_workers_claim_by_priority_then_by_due_time(settings, clock):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    send_sms(NUMBERS[0:3], TEXT, queue=True, priority="bulk")
    clock.move(1)
    send_sms(NUMBERS[3:5], TEXT, queue=True)
    clock.move(1)
    send_sms(NUMBERS[5], TEXT, queue=True, priority="high")
    services.run_workers(batch_size=2)
    assert sent_numbers() == [NUMBERS[5], NUMBERS[3], NUMBERS[4], *NUMBERS[0:3]]


def test_an_unknown_priority_is_refused_before_anything_is_stored():
    with pytest.raises(ZhenziInputError, match="priority must be one of high, normal, bulk"):
        send_sms(NUMBERS[0], TEXT, queue=True, priority="urgent")
    assert Priority.parse(Priority.HIGH) is Priority.HIGH


@pytest.mark.django_db(transaction=True)
def test_a_requeued_message_is_handed_over_again(settings, enqueued):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "DISPATCH": "tasks"}
    message = send_sms(NUMBERS[0], TEXT, queue=True, priority="high")
    Message.objects.filter(pk=message.pk).update(status=Status.FAILED)
    django_zhenzi.outbox.clear()
    result = services.requeue_failed(Message.objects.all())
    assert result.requeued == 1
    assert [list(r.args) for r in enqueued] == [[[message.message_id]]] * 2
    assert sent_numbers() == [NUMBERS[0]]


@pytest.mark.django_db(transaction=True)
def test_verification_codes_never_go_through_the_engine(settings, enqueued):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": LOCMEM,
        "DISPATCH": "tasks",
        "CODE_MESSAGE": "【测试】您的验证码是{code}，{minutes}分钟内有效。",
    }
    send_code(NUMBERS[0])
    assert enqueued == []
    assert sent_numbers() == [NUMBERS[0]]


@pytest.mark.django_db
def test_zhenzi_send_queues_with_a_priority():
    call_command("zhenzi_send", NUMBERS[0], "--message", TEXT, "--queue", "--priority", "high")
    call_command("zhenzi_send", NUMBERS[1], "--message", TEXT, "--queue")
    assert list(Message.objects.order_by("id").values_list("priority", flat=True)) == [
        Priority.HIGH,
        Priority.NORMAL,
    ]
    with pytest.raises(CommandError, match="invalid choice: 'urgent'"):
        call_command("zhenzi_send", NUMBERS[2], "--message", TEXT, "--priority", "urgent")


@pytest.mark.django_db
def test_the_admin_send_form_queues_with_a_priority(login_with):
    client = login_with("send_message", "view_message")
    form = {"numbers": NUMBERS[0], "message": TEXT, "mode": "queue", "priority": "bulk"}
    response = client.post("/admin/django_zhenzi/message/send/", form)
    assert response.status_code == 302
    assert Message.objects.get().priority == Priority.BULK
    page = client.get("/admin/django_zhenzi/message/send/").content.decode()
    assert 'name="priority"' in page


@pytest.mark.django_db(transaction=True)
def test_the_sweep_takes_over_a_dead_tasks_claim_and_sends_it_once(tasks_dispatch, clock):
    rows = services.create_messages(NUMBERS[:1], services.Content(text=TEXT), queue=False)
    django_zhenzi.outbox.clear()  # sent at once above: make it a claim a dead task left
    Message.objects.update(status=Status.SENDING, claim_token="dead", claimed_at=clock.moment)

    clock.move(301)  # past CLAIM_TIMEOUT
    first = engine_work.sweep()
    assert (first.expired_claims, first.reconciled) == (1, 1)
    assert Message.objects.get().status == Status.UNKNOWN  # never resent blindly

    clock.move(600 + 10)  # RECONCILE_SETTLE: "not found" is believed, the message retried
    engine_work.sweep()
    message = Message.objects.get()
    assert message.status == Status.QUEUED and clock.moment < message.next_attempt_at

    clock.moment = message.next_attempt_at + timedelta(seconds=engine_work.SWEEP_GRACE)
    assert engine_work.sweep().sent == 1
    assert [sms.message_id for sms in django_zhenzi.outbox] == [rows[0].message_id]


@pytest.mark.django_db(transaction=True)
def test_the_sweep_polls_the_status_of_sent_messages_without_a_report(tasks_dispatch, clock):
    message = send_sms(NUMBERS[0], TEXT, queue=True)
    clock.move(600)  # STATUS_SYNC_AFTER
    engine.sweep.enqueue()
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_an_early_task_hands_its_messages_off_again_for_when_they_are_due(
    settings, clock, enqueued
):
    """On a backend that can delay tasks (django-tasks-db here), a task that comes before its
    messages are due enqueues one for their due time instead of leaving them to the sweep."""
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": LOCMEM,
        "DISPATCH": "tasks",
        "TASKS_BACKEND": "database",
    }
    rows = send_sms(NUMBERS[:3], TEXT, queue=True)
    due = clock.moment + timedelta(seconds=30)
    Message.objects.update(next_attempt_at=due)
    enqueued.clear()

    result = engine_work.send_handed_off([row.message_id for row in rows])

    assert result.claimed == 0 and django_zhenzi.outbox == []
    (again,) = enqueued
    (handed,) = again.args
    assert sorted(handed) == sorted(row.message_id for row in rows)
    assert again.task.run_after == due
