"""The queue's promises under concurrency, provider faults, poison messages and killed workers.

Every test drives the real queue (the services, the ``zhenzi_send_queued`` command, worker
processes) against the sandbox over HTTP, then checks the sandbox's own record of what arrived:
each message must reach it exactly once, or end ``failed`` with its reason and never have reached
it; no row may be left ``queued``, ``sending`` or ``unknown``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Min

from django_zhenzi import services
from django_zhenzi.models import Message, Status
from django_zhenzi.sandbox import Sandbox
from django_zhenzi.services.clock import StoppedClock
from tests.workers import (
    finish,
    queue_messages,
    sent_count,
    wait_until,
    wait_while_running,
    worker_env,
    worker_process,
)

FINAL = (Status.SENT, Status.FAILED)
FAULT_KINDS = ("timeout", "http500", "non_json", "code1000", "cut")
FAULT_RATE = 0.2
SEED = 20240601


@pytest.fixture
def faulty_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose fault rolls are seeded, holding "timeout" requests for 1 s only."""
    with Sandbox(
        port=0, app_id="test-app", app_secret="test-secret-value", seed=SEED, hang_seconds=1
    ) as running:
        yield running


def use_sandbox(settings, sandbox: Sandbox, **zhenzi: float | int) -> None:
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, **zhenzi}


def drain(clock: StoppedClock, *, concurrency: int = 1, max_passes: int = 60) -> None:
    """Run worker passes until no message is left to act on, moving the clock to the next due
    time between passes. Fails if a pass leaves a message ``sending``."""
    for _ in range(max_passes):
        services.run_workers(concurrency=concurrency, batch_size=25)
        assert not Message.objects.filter(status=Status.SENDING).exists(), "a claim was lost"
        waiting = Message.objects.exclude(status__in=FINAL)
        next_due = waiting.aggregate(Min("next_attempt_at"))["next_attempt_at__min"]
        if next_due is None:
            return
        # Jump a little past it, so that messages due close together share a pass.
        clock.moment = max(clock.moment, next_due) + timedelta(seconds=2)
    raise AssertionError(f"messages still waiting after {max_passes} passes")


def assert_each_sent_once_or_failed(sandbox: Sandbox) -> tuple[int, int]:
    """Every row final; sent ones accepted once by the sandbox, failed ones never and with a
    reason. Returns (sent, failed)."""
    rows = list(Message.objects.values_list("message_id", "status", "error_text"))
    sent = failed = 0
    for message_id, status, error_text in rows:
        assert status in FINAL, f"{message_id} ended {status}"
        assert sandbox.accepted_count(message_id) == (1 if status == Status.SENT else 0)
        if status == Status.SENT:
            sent += 1
        else:
            assert error_text, f"{message_id} failed without a reason"
            failed += 1
    assert len(sandbox.messages) == sent
    return sent, failed


# --- 1. Concurrency ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_four_worker_processes_send_each_message_exactly_once(sandbox):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers: parallel workers need PostgreSQL or MySQL")
    rows = queue_messages(2000)
    env = worker_env(sandbox.url)

    with ExitStack() as stack:
        workers = [
            stack.enter_context(worker_process(["--batch-size", "20"], env)) for _ in range(4)
        ]
        outputs = [finish(worker, timeout=180) for worker in workers]

    per_worker = [sent_count(stdout) for stdout, _ in outputs]
    assert sum(per_worker) == 2000
    assert sum(1 for count in per_worker if count) >= 2, f"no overlap: {per_worker}"
    assert len(sandbox.messages) == 2000
    assert all(sandbox.request_count(row.message_id) == 1 for row in rows)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_on_the_sqlite_database_startproject_gives(sandbox):
    """SQLite without IMMEDIATE transactions (the default): threads of one worker take turns
    to write instead of failing with "database is locked"."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    rows = queue_messages(500)
    sandbox.set_faults(latency=0.005)
    env = {**worker_env(sandbox.url), "SQLITE_AS_STARTPROJECT_MAKES_IT": "1"}

    with worker_process(["--concurrency", "16", "--batch-size", "10"], env) as worker:
        stdout, stderr = finish(worker, timeout=180)

    assert "Traceback" not in stderr
    assert sent_count(stdout) == 500
    assert all(sandbox.accepted_count(row.message_id) == 1 for row in rows)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


# --- 2. Provider faults --------------------------------------------------------------------------

# The clock jumps over RECONCILE_DELAY, so a lookup can follow an ambiguous answer within
# milliseconds: TIMEOUT must be long enough that only injected faults time out, or a request the
# sandbox was merely slow to process could be found missing, sent again and refused as a
# duplicate. Short only where "timeout" faults make each one cost TIMEOUT seconds.
FAULT_SETTINGS = {
    "TIMEOUT": 2,
    "CLAIM_TIMEOUT": 10,
    "RECONCILE_DELAY": 2,
    "RECONCILE_SETTLE": 6,
    "RETRY_DELAY": 1,
    "RETRY_MAX_DELAY": 4,
    "MAX_ATTEMPTS": 10,
}
TIMEOUT_FOR_KIND = {"timeout": 0.25}


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_ends_with_every_message_sent_once(kind, faulty_sandbox, settings, clock):
    use_sandbox(
        settings, faulty_sandbox, **{**FAULT_SETTINGS, "TIMEOUT": TIMEOUT_FOR_KIND.get(kind, 2)}
    )
    faulty_sandbox.set_faults(rates={kind: FAULT_RATE})
    rows = queue_messages(150)

    drain(clock)

    sent, failed = assert_each_sent_once_or_failed(faulty_sandbox)
    assert (sent, failed) == (150, 0)  # ten attempts are plenty at a 20% fault rate
    request_counts = [faulty_sandbox.request_count(row.message_id) for row in rows]
    reconciled = Message.objects.filter(provider_answer__has_key="findSmsByMessageId").count()
    if kind == "cut":
        # A cut connection hides an accepted message: it is looked up, never sent again.
        assert reconciled > 0
        assert set(request_counts) == {1}
    else:
        # The provider never processed the faulty request: the message went again.
        assert max(request_counts) >= 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_mixed_faults_with_four_threads_and_few_attempts(faulty_sandbox, settings, clock):
    use_sandbox(settings, faulty_sandbox, **{**FAULT_SETTINGS, "TIMEOUT": 0.5, "MAX_ATTEMPTS": 2})
    faulty_sandbox.set_faults(rates=dict.fromkeys(FAULT_KINDS, FAULT_RATE / len(FAULT_KINDS)))
    queue_messages(300)

    drain(clock, concurrency=4)

    sent, failed = assert_each_sent_once_or_failed(faulty_sandbox)
    assert sent + failed == 300
    assert sent > 0
    assert failed > 0  # two faults in a row on a message happen ~8 times in 300
    gave_up = Message.objects.filter(status=Status.FAILED)
    assert all(
        text.startswith("Gave up after 2 attempts")
        for text in gave_up.values_list("error_text", flat=True)
    )


# --- 3. A poison message -------------------------------------------------------------------------


def corrupt_number(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(number="not-a-number")


def unknown_template(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(text="", template_id="999999")


def corrupt_template_params(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(text="", template_id="1001", template_params=7)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("poison", "error_code", "reason"),
    [
        (unknown_template, 117, "templateId"),
        (corrupt_number, None, "mobile number"),
        (corrupt_template_params, None, "not a list of strings"),
    ],
)
def test_poison_message_at_the_head_fails_alone_in_one_run(
    poison, error_code, reason, sandbox, settings
):
    use_sandbox(settings, sandbox)
    head, *rest = queue_messages(100)
    poison(head)
    out = StringIO()

    call_command("zhenzi_send_queued", "--batch-size", "10", stdout=out)

    assert "sent 99, failed 1," in out.getvalue()
    head.refresh_from_db()
    assert head.status == Status.FAILED
    assert head.error_code == error_code
    assert reason in head.error_text
    assert sandbox.accepted_count(head.message_id) == 0
    assert Message.objects.filter(status=Status.SENT).count() == 99
    assert all(sandbox.accepted_count(row.message_id) == 1 for row in rest)


# --- 4. A worker killed mid-batch ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_is_reconciled_not_resent(sandbox):
    rows = queue_messages(40)
    sandbox.set_faults(latency=0.05)

    with worker_process(["--batch-size", "10"], worker_env(sandbox.url)) as doomed:
        assert wait_while_running(doomed, lambda: len(sandbox.messages) >= 5, timeout=60)
        sandbox.set_faults(latency=2.0)  # the worker's next request waits 2 s at the provider
        time.sleep(0.5)
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=30)
    # The provider goes on with the request the worker died waiting for, and accepts it.
    assert wait_until(lambda: not sandbox.http_server.open_connections(), timeout=30)
    sandbox.set_faults(latency=0)
    accepted = {message["messageId"] for message in sandbox.messages}
    claimed = set(
        Message.objects.filter(status=Status.SENDING).values_list("message_id", flat=True)
    )
    # Accepted by the provider but still "sending" here: the request the worker died in, and
    # the successes it had not yet recorded (they are written in bulk).
    in_flight = accepted & claimed
    assert in_flight, "the worker was not killed after the provider accepted a message"
    assert Message.objects.filter(status=Status.QUEUED).exists()

    fresh_env = worker_env(
        sandbox.url,
        TIMEOUT=0.4,
        CLAIM_TIMEOUT=1,
        RECONCILE_DELAY=0.1,
        RECONCILE_SETTLE=1.5,
        RETRY_DELAY=0.1,
    )
    with worker_process(["--loop", "--idle-wait", "0.1"], fresh_env) as fresh:
        done = wait_while_running(
            fresh, lambda: not Message.objects.exclude(status__in=FINAL).exists(), timeout=60
        )
        fresh.send_signal(signal.SIGTERM)
        finish(fresh, timeout=30)
    assert done, "messages left unsent"

    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    assert len(sandbox.messages) == 40
    assert all(sandbox.request_count(row.message_id) == 1 for row in rows)
    reconciled = Message.objects.filter(message_id__in=in_flight)
    assert len(reconciled) == len(in_flight)
    assert all("findSmsByMessageId" in message.provider_answer for message in reconciled)


# --- Clean stop and long batches -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_the_message_in_flight_and_releases_the_rest(sandbox, settings):
    use_sandbox(settings, sandbox)
    rows = queue_messages(30)
    sandbox.set_faults(latency=0.2)

    with worker_process(["--loop", "--batch-size", "10"], worker_env(sandbox.url)) as worker:
        assert wait_while_running(worker, lambda: len(sandbox.messages) >= 2, timeout=60)
        worker.send_signal(signal.SIGTERM)
        _, stderr = finish(worker, timeout=30)
    assert "Stopping" in stderr

    accepted = {message["messageId"] for message in sandbox.messages}
    statuses = dict(Message.objects.values_list("message_id", "status"))
    assert {statuses[message_id] for message_id in accepted} == {Status.SENT}
    left = Message.objects.exclude(message_id__in=accepted)
    assert left.exists()
    assert set(left.values_list("status", "attempts")) == {(Status.QUEUED, 0)}

    sandbox.set_faults(latency=0)
    call_command("zhenzi_send_queued", stdout=StringIO())
    assert len(sandbox.messages) == 30
    assert all(sandbox.request_count(row.message_id) == 1 for row in rows)


@pytest.mark.django_db
def test_a_slow_batch_is_not_sent_again_by_another_worker(sandbox, settings, clock):
    """A worker's claim dates from its batch's start; if its batch takes longer than
    CLAIM_TIMEOUT, another worker reconciles and sends the rest. The slow worker must then
    skip them rather than send them a second time."""
    use_sandbox(settings, sandbox, CLAIM_TIMEOUT=60, RETRY_DELAY=1, RETRY_MAX_DELAY=1)
    rows = queue_messages(3)
    slow_token = services.new_claim_token()
    batch = services.claim_due(slow_token, 10)
    claim = services.BatchClaim(slow_token, batch)
    assert claim.holds(batch[0])
    services.send_claimed(batch[0], slow_token)

    clock.move(61)  # the slow worker is still busy when another one passes...
    services.run_workers()  # ...takes its claims for a dead worker's, finds nothing yet
    clock.move(601)  # past RECONCILE_SETTLE: still not found, so requeued
    services.run_workers()
    clock.move(2)
    assert services.run_workers().sent == 2  # ...and sends them
    for message in batch[1:]:  # the slow worker goes on with its batch, as work_batch does
        if claim.holds(message):
            services.send_claimed(message, slow_token)
    assert not any(claim.holds(message) for message in batch[1:])

    assert all(sandbox.request_count(row.message_id) == 1 for row in rows)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


@pytest.mark.django_db(transaction=True)
def test_a_report_inside_a_transaction_never_waits_for_a_worker_thread_on_sqlite(sandbox):
    """The callback view applies reports inside its transaction, which on SQLite (IMMEDIATE)
    holds the write lock; a worker thread of the same process (the demo runs one beside its
    server) may hold the in-process turn and wait for that lock. The report must not wait for
    the turn, or both wait until SQLite's busy timeout."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: the in-process turn exists there alone")
    (message,) = queue_messages(1)
    worker_has_turn, report_holds_lock = threading.Event(), threading.Event()
    worker_done = threading.Event()

    def worker() -> None:
        try:
            with services.transitions.serialized_writes():  # a worker thread's turn...
                worker_has_turn.set()
                report_holds_lock.wait(10)
                Message.objects.filter(pk=message.pk).update(attempts=1)  # ...then a write
        finally:
            connections.close_all()
            worker_done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    assert worker_has_turn.wait(10)
    started = time.monotonic()
    with transaction.atomic():  # the callback view's transaction takes the write lock
        report_holds_lock.set()
        services.apply_report(services.ReportData(message.message_id, "DELIVRD"))
    waited = time.monotonic() - started
    thread.join(60)

    assert waited < 5, f"the report waited {waited:.1f} s for the worker thread's turn"
    assert worker_done.is_set()
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Status.DELIVERED, 1)
