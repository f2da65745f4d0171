"""``zhenzi_send_queued --processes N``: real worker processes under one supervisor, against the
sandbox over HTTP; the sandbox's own record says whether each message arrived exactly once."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from django_zhenzi.management.processes import Supervisor
from django_zhenzi.models import Message, Status
from tests.dying_worker import die_at_once, start_slowly
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


def skip_on_sqlite() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers: parallel workers need PostgreSQL or MySQL")


def worker_children(supervisor_pid: int) -> set[int]:
    """The pids of the worker processes the supervisor started (multiprocessing's spawn)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor_pid and b"spawn_main" in command:
            children.add(int(entry.name))
    return children


def sending_pids() -> set[str]:
    """The pids in the claim tokens of the sent messages (``host:pid:random``)."""
    tokens = Message.objects.filter(status=Status.SENT).values_list("claim_token", flat=True)
    return {token.split(":")[1] for token in tokens}


def assert_each_accepted_once(sandbox, rows: list[Message]) -> None:
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    assert len(sandbox.messages) == len(rows)
    assert all(sandbox.request_count(row.message_id) == 1 for row in rows)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_share_the_queue_and_send_each_message_once(sandbox):
    skip_on_sqlite()
    rows = queue_messages(400)
    sandbox.set_faults(latency=0.01)

    options = ["--processes", "2", "--concurrency", "4", "--batch-size", "20"]
    with worker_process(options, worker_env(sandbox.url)) as supervisor:
        stdout, _ = finish(supervisor, timeout=120)

    assert sent_count(stdout) == 400  # one summary, the processes' totals added up
    assert_each_accepted_once(sandbox, rows)
    assert len(sending_pids()) == 2
    assert str(supervisor.pid) not in sending_pids()  # the supervisor sends nothing itself


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_process_is_started_again_and_nothing_is_sent_twice(sandbox):
    skip_on_sqlite()
    rows = queue_messages(300)
    sandbox.set_faults(latency=0.05)
    env = worker_env(
        sandbox.url, TIMEOUT=0.4, CLAIM_TIMEOUT=1, RECONCILE_DELAY=0.1, RECONCILE_SETTLE=1.5
    )
    options = ["--loop", "--idle-wait", "0.1", "--processes", "2", "--batch-size", "10"]

    with worker_process(options, env) as supervisor:
        assert wait_while_running(supervisor, lambda: len(sandbox.messages) >= 20, timeout=60)
        first = worker_children(supervisor.pid)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        def replaced_by_another() -> bool:
            children = worker_children(supervisor.pid)
            return len(children) == 2 and victim not in children

        replaced = wait_while_running(supervisor, replaced_by_another, timeout=30)
        assert replaced, "the killed worker process was not started again"
        sandbox.set_faults(latency=0)
        done = wait_while_running(
            supervisor, lambda: not Message.objects.exclude(status__in=FINAL).exists(), timeout=60
        )
        supervisor.send_signal(signal.SIGTERM)
        _, stderr = finish(supervisor, timeout=30)

    assert done, "messages left unsent"
    assert re.search(rf"\(pid {victim}\) exited with SIGKILL; starting it again in 1 s", stderr)
    assert_each_accepted_once(sandbox, rows)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigterm_stops_every_worker_process_cleanly(sandbox):
    skip_on_sqlite()
    rows = queue_messages(200)
    sandbox.set_faults(latency=0.1)
    options = ["--loop", "--processes", "2", "--batch-size", "10"]

    with worker_process(options, worker_env(sandbox.url)) as supervisor:
        assert wait_while_running(supervisor, lambda: len(sandbox.messages) >= 10, timeout=60)
        children = worker_children(supervisor.pid)
        supervisor.send_signal(signal.SIGTERM)
        stdout, stderr = finish(supervisor, timeout=30)

    assert "Stopping" in stderr
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    accepted = {message["messageId"] for message in sandbox.messages}
    assert sent_count(stdout) == len(accepted)
    statuses = dict(Message.objects.values_list("message_id", "status"))
    assert {statuses[message_id] for message_id in accepted} == {Status.SENT}
    left = Message.objects.exclude(message_id__in=accepted)
    assert left.exists()
    assert set(left.values_list("status", "attempts")) == {(Status.QUEUED, 0)}
    assert all(sandbox.request_count(row.message_id) <= 1 for row in rows)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigterm_while_the_worker_processes_set_django_up_stops_them_cleanly(sandbox):
    """The command stopped just after it started its workers (or restarted one): they are
    still setting Django up. Each must stop as if it had been running, not die of the SIGTERM
    and make the command exit 1 with "Worker process N exited with SIGTERM"."""
    queue_messages(5)
    env = {**worker_env(sandbox.url), "WORKER_PROCESS_SETUP_DELAY": "3"}
    options = ["--loop", "--processes", "2"]

    with worker_process(options, env) as supervisor:
        started = wait_while_running(
            supervisor, lambda: len(worker_children(supervisor.pid)) == 2, timeout=60
        )
        assert started
        supervisor.send_signal(signal.SIGTERM)
        stdout, stderr = finish(supervisor, timeout=30)

    assert "exited with" not in stderr
    assert sent_count(stdout) == 0
    assert sandbox.messages == []
    assert set(Message.objects.values_list("status", "attempts")) == {(Status.QUEUED, 0)}


@pytest.mark.slow
def test_a_worker_that_keeps_dying_is_restarted_ever_more_slowly():
    said: list[str] = []
    supervisor = Supervisor(
        1, {}, loop=True, settings_module="tests.settings", say=said.append, target=die_at_once
    )
    timer = threading.Timer(4.5, supervisor._stop, args=(signal.SIGTERM, None))
    timer.start()
    try:
        started = time.monotonic()
        supervisor.run()
    finally:
        timer.cancel()

    assert time.monotonic() - started < 8
    restarts = [line for line in said if "starting it again" in line]
    waits = [int(re.search(r"again in (\d+) s", line).group(1)) for line in restarts]
    assert waits[:2] == [1, 2], said
    assert len(waits) <= 3, said  # no spinning: 1 + 2 (+ 4) seconds in 4.5
    assert all("exited with 3" in line for line in restarts)


def test_a_worker_process_stopped_before_its_signal_handler_is_set_is_no_failure():
    """A SIGTERM can reach a worker process before its first line runs (the interpreter and
    multiprocessing still starting it): it dies of the signal, having done nothing, and the
    supervisor that sent the signal counts a stop, not a failure."""
    said: list[str] = []
    supervisor = Supervisor(
        1, {}, loop=True, settings_module="tests.settings", say=said.append, target=start_slowly
    )

    def stop_once_started() -> None:
        assert wait_until(lambda: supervisor.slots[0].process is not None, timeout=30)
        assert wait_until(lambda: supervisor.slots[0].process.pid is not None, timeout=30)
        supervisor._stop(signal.SIGTERM, None)

    stopper = threading.Thread(target=stop_once_started)
    stopper.start()
    started = time.monotonic()
    supervisor.run()
    stopper.join()

    assert time.monotonic() - started < 30
    assert supervisor.failures == []
    assert not any("starting it again" in line for line in said), said


@pytest.mark.django_db
def test_limit_is_refused_with_several_processes():
    with pytest.raises(CommandError, match="--limit cannot be combined with --processes"):
        call_command("zhenzi_send_queued", processes=2, limit=10, stdout=StringIO())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_without_loop_ends_when_every_process_has_drained_the_queue(sandbox):
    skip_on_sqlite()
    rows = queue_messages(50)
    with worker_process(["--processes", "3"], worker_env(sandbox.url)) as supervisor:
        stdout, _ = finish(supervisor, timeout=60)
    assert sent_count(stdout) == 50
    assert_each_accepted_once(sandbox, rows)
