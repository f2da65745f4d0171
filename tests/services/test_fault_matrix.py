"""The fault matrix: "at most once, none lost" under the faults every site meets.

Each case runs real ``zhenzi_send_queued`` worker processes (and ``zhenzi_send`` send-now
processes) against the sandbox over HTTP, injects one fault, lets the system settle, and checks
the sandbox's own record: every message accepted by the provider exactly once, no row left
``queued``, ``sending`` or ``unknown``, and the commands' counts and exit codes true.

The cases run on PostgreSQL and MariaDB (the databases that let workers run side by side); the
database restart runs on a private PostgreSQL cluster of its own, never the machine's server.
Timeouts are short so that each case takes seconds: TIMEOUT 1 s, CLAIM_TIMEOUT 3 s,
RECONCILE_SETTLE 3-4 s.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import psycopg
import pytest
from django.db import connection

from django_zhenzi.models import Message, Status
from django_zhenzi.sandbox import Sandbox
from django_zhenzi.sandbox.provider import BALANCE_PATH
from tests.workers import (
    REPO_ROOT,
    TEXT,
    WORKER_SETTINGS,
    command_process,
    finish,
    queue_messages,
    wait_until,
    worker_env,
    worker_process,
)

pytestmark = pytest.mark.slow

SETTINGS = {
    "TIMEOUT": 1,
    "CLAIM_TIMEOUT": 3,
    "RECONCILE_DELAY": 0.3,
    "RECONCILE_SETTLE": 4,
    "RETRY_DELAY": 0.2,
    "RETRY_MAX_DELAY": 1,
    "MAX_ATTEMPTS": 10,
}
WORKER_OPTIONS = ("--loop", "--idle-wait", "0.1", "--account-wait", "0.3", "--batch-size", "10")
NOT_FINAL = (Status.QUEUED, Status.SENDING, Status.UNKNOWN)


@pytest.fixture(autouse=True)
def _parallel_database() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("workers side by side need PostgreSQL or MariaDB (SQLite serializes them)")


@pytest.fixture
def provider() -> Iterator[Sandbox]:
    """A sandbox whose "timeout" and "late" requests hang 1.5 s, past the client's TIMEOUT."""
    with Sandbox(
        port=0, app_id="test-app", app_secret="test-secret-value", seed=7, hang_seconds=1.5
    ) as running:
        yield running


@contextmanager
def workers(count: int, env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` running ``--loop`` workers; on exit each gets SIGTERM and must exit 0."""
    with ExitStack() as stack:
        running = [stack.enter_context(worker_process(WORKER_OPTIONS, env)) for _ in range(count)]
        yield running
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            finish(process, timeout=60)


def send_now(numbers: Sequence[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``zhenzi_send`` (send-now, no ``--queue``) to ``numbers``: (exit code, out, err)."""
    with command_process("zhenzi_send", [*numbers, "--message", TEXT], env) as process:
        out, err = process.communicate(timeout=180)
    return process.returncode, out, err


def balance_reads_stopped(provider: Sandbox, quiet: float) -> bool:
    """Whether no balance request reached the provider for ``quiet`` seconds."""
    before = provider.requests_by_endpoint[BALANCE_PATH]
    time.sleep(quiet)
    return provider.requests_by_endpoint[BALANCE_PATH] == before


def settled() -> bool:
    return not Message.objects.filter(status__in=NOT_FINAL).exists()


def assert_each_accepted_once(provider: Sandbox, count: int) -> None:
    rows = list(Message.objects.values_list("message_id", "status"))
    assert len(rows) == count
    assert {status for _, status in rows} <= {Status.SENT, Status.DELIVERED}, rows
    assert [m for m, _ in rows if provider.accepted_count(m) != 1] == []
    assert len(provider.messages) == count


def numbers(count: int, first: int = 13900000000) -> list[str]:
    return [str(first + n) for n in range(count)]


@pytest.mark.django_db(transaction=True)
def test_a_send_now_longer_than_the_claim_timeout_beside_running_workers(provider):
    """The batch outlasts CLAIM_TIMEOUT twice over; the workers must not take its messages for a
    dead sender's, and the command's summary and exit code must say what happened."""
    provider.set_faults(latency=0.1)  # 60 x 0.1 s = 6 s for the batch, CLAIM_TIMEOUT is 3 s
    env = worker_env(provider.url, **SETTINGS)

    with workers(2, env):
        code, out, err = send_now(numbers(60), env)
        assert wait_until(settled, timeout=60)

    assert code == 0, err
    assert (
        "Sent 60, failed 0, queued for a retry 0, unknown 0, invalid 0, repeated numbers "
        "skipped 0." in out
    )
    assert_each_accepted_once(provider, 60)
    assert all(provider.request_count(m["messageId"]) == 1 for m in provider.messages)


@pytest.mark.django_db(transaction=True)
def test_a_zero_balance_pauses_sending_and_a_top_up_sends_everything_once(provider):
    provider.balance = 0
    queue_messages(40)
    env = worker_env(provider.url, **SETTINGS)

    with workers(2, env):
        # Both workers meet 108, then check the balance instead of burning the queue.
        assert wait_until(lambda: provider.requests_by_endpoint[BALANCE_PATH] >= 4, timeout=30)
        code, out, err = send_now(numbers(5), env)
        assert code == 1
        assert "Stopped at the first refusal of the account: Zhenzi error 108" in err
        assert "Sent 0, failed 0, queued for a retry 5" in out
        assert provider.messages == []
        assert set(Message.objects.values_list("status", "attempts")) == {(Status.QUEUED, 0)}

        provider.balance = 1000
        assert wait_until(settled, timeout=60)
        # One worker may send everything before the other's next balance check: stop them only
        # once neither reads the balance any more (a paused worker reads it every 0.3 s), or the
        # late one exits still paused, with status 1.
        assert wait_until(lambda: balance_reads_stopped(provider, quiet=1.0), timeout=30)

    assert_each_accepted_once(provider, 45)
    assert not Message.objects.filter(status=Status.FAILED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_provider_that_records_sends_seconds_after_answering_late(provider):
    """The answer times out (1 s) and the provider records the message only 2.5 s after the
    request: a lookup before then says "not found", which must not be believed before
    RECONCILE_SETTLE (4 s)."""
    provider.late_seconds = 2.5
    provider.set_faults(rates={"late": 0.25})
    provider.fail_next("late", 3)
    queue_messages(40)

    with workers(2, worker_env(provider.url, **SETTINGS)):
        assert wait_until(settled, timeout=90)

    assert_each_accepted_once(provider, 40)
    late = Message.objects.filter(provider_answer__has_key="findSmsByMessageId")
    assert late.count() >= 3  # found by reconciliation, not sent again
    assert all(provider.repeat_count(message.message_id) == 0 for message in late)


@pytest.mark.django_db(transaction=True)
def test_a_refused_repeat_of_a_messageid_is_reconciled_never_failed(provider):
    """A provider slower than the settle window (6 s against 3 s): the message is sent again
    and refused as a repeat of its messageId, which proves the first attempt arrived."""
    provider.late_seconds = 6
    provider.fail_next("late", 4)
    queue_messages(12)
    settings = {**SETTINGS, "RECONCILE_SETTLE": 3}

    with workers(2, worker_env(provider.url, **settings)):
        assert wait_until(settled, timeout=90)

    assert_each_accepted_once(provider, 12)
    repeated = [m["messageId"] for m in provider.messages if provider.repeat_count(m["messageId"])]
    assert len(repeated) == 4
    assert not Message.objects.filter(status=Status.FAILED).exists()


# --- A database restart under running workers ----------------------------------------------------


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", f"--settings={WORKER_SETTINGS}", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )


def rows_by_status(url: str) -> dict[str, int]:
    with psycopg.connect(url) as database:
        found = database.execute(
            "SELECT status, count(*) FROM django_zhenzi_message GROUP BY status"
        ).fetchall()
    return dict(found)


def message_ids(url: str) -> list[str]:
    with psycopg.connect(url) as database:
        return [row[0] for row in database.execute("SELECT message_id FROM django_zhenzi_message")]


def test_workers_survive_a_database_restart(provider, private_postgres):
    if connection.vendor != "postgresql":
        pytest.skip("runs once, on the PostgreSQL run: the cluster is a private one anyway")
    url = private_postgres.create_database("zhenzi_restart")
    env = {**worker_env(provider.url, **SETTINGS), "DATABASE_URL": url}
    migrate(env)
    with command_process(
        "zhenzi_send", ["--queue", "--file", "-", "--message", TEXT], env
    ) as queue:
        queue.communicate("\n".join(numbers(300)), timeout=120)
    assert queue.returncode == 0
    provider.set_faults(latency=0.02)

    with ExitStack() as stack:
        running = [stack.enter_context(worker_process(WORKER_OPTIONS, env)) for _ in range(2)]
        assert wait_until(lambda: len(provider.messages) >= 40, timeout=60)
        private_postgres.restart(down_seconds=3)
        assert wait_until(lambda: rows_by_status(url) == {Status.SENT: 300}, timeout=120), (
            rows_by_status(url)
        )
        for process in running:
            process.send_signal(signal.SIGTERM)
        outputs = [finish(process, timeout=60) for process in running]

    logs = "".join(err for _, err in outputs)
    assert "A worker pass failed" in logs  # the restart was felt...
    assert "Worker passes succeed again" in logs  # ...and survived by the same processes
    assert len(provider.messages) == 300
    assert all(provider.accepted_count(message_id) == 1 for message_id in message_ids(url))
