"""Celery dispatch against ``zhenzi_send_queued``: the same number of queued messages drained by
each, in the same run, against the same sandbox with 20 ms added latency per API call. Prints
messages per second and worker CPU time per message for each; asserts nothing about time.

    .venv/bin/python benchmarks/bench_dispatch.py [--messages 2000] [--concurrency 16]

Both run as processes of their own, started and idle before the messages are queued, so start-up
is not counted: ``zhenzi_send_queued --loop --concurrency C`` (threads) and
``celery worker --concurrency C`` (prefork processes) on Redis (``--broker``; a key prefix and a
queue of the run's own, removed afterwards). The clock runs from the moment the messages are
queued (for Celery, queued and handed over, one task per DISPATCH_BATCH_SIZE messages) until the
last is sent; CPU is the worker's whole process tree (``/proc/<pid>/stat``, children included).
Each run checks that every message was sent exactly once. See benchmarks/README.rst.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_send_queued import (  # noqa: E402
    APP_ID,
    APP_SECRET,
    SETTINGS_MODULE,
    SandboxProcess,
    check_all_sent,
    child_env,
    empty_queue,
    print_load,
    queue_messages,
    sent_count,
    worker_database_url,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root`` and its live descendants (one level of children is
    enough here: a Celery worker's pool processes)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if root in (pid, parent):
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def drain(
    process: subprocess.Popen[bytes], count: int, sandbox: SandboxProcess, start: Callable[[], None]
) -> tuple[float, float]:
    """Messages per second and CPU seconds per message of ``process`` sending ``count``
    messages that ``start`` queues."""
    cpu_before = tree_cpu_seconds(process.pid)
    started = time.perf_counter()
    start()
    while sent_count() < count:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with {process.returncode}")
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    cpu = tree_cpu_seconds(process.pid) - cpu_before
    check_all_sent(count, sandbox)
    return count / elapsed, cpu / count


def wait_idle(process: subprocess.Popen[bytes], log: Path, ready: str) -> None:
    deadline = time.monotonic() + 60
    while ready not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{log.read_text()}")
        time.sleep(0.1)
    time.sleep(1)  # let start-up settle before the CPU is sampled


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own (``stop`` ends it with its children), its output in
    ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_worker(args: argparse.Namespace, sandbox: SandboxProcess, log: Path) -> tuple[float, float]:
    empty_queue()
    sandbox.reset(args.latency)
    env = child_env(DATABASE_URL=worker_database_url(), ZHENZI_API_URL=sandbox.url)
    command = [
        sys.executable,
        "-m",
        "django",
        "zhenzi_send_queued",
        f"--settings={SETTINGS_MODULE}",
    ]
    command += ["--loop", "--idle-wait", "0.05", f"--concurrency={args.concurrency}", "-v", "2"]
    process = spawn(command, env, log)
    try:
        time.sleep(3)  # no ready line: give Django its start-up
        if process.poll() is not None:
            raise SystemExit(f"zhenzi_send_queued exited:\n{log.read_text()}")
        return drain(process, args.messages, sandbox, lambda: queue_messages(args.messages))
    finally:
        stop(process)


def run_celery(args: argparse.Namespace, sandbox: SandboxProcess, log: Path) -> tuple[float, float]:
    from celery import Celery
    from django.conf import settings

    from django_zhenzi.models import Message
    from django_zhenzi.priority import Priority
    from django_zhenzi.services import clock, handoff

    empty_queue()
    sandbox.reset(args.latency)
    run = uuid.uuid4().hex[:10]
    queue, options = f"zhenzi-bench-{run}", {"global_keyprefix": f"zhenzi-bench-{run}:"}
    queues = {word: queue for word in Priority.words()}
    app = Celery("bench", set_as_current=True)
    app.conf.update(broker_url=args.broker, broker_transport_options=options)
    settings.ZHENZI = {**settings.ZHENZI, "DISPATCH": "celery", "DISPATCH_QUEUES": queues}
    env = child_env(
        DATABASE_URL=worker_database_url(),
        ZHENZI_API_URL=sandbox.url,
        ZHENZI_DISPATCH="celery",
        ZHENZI_DISPATCH_QUEUES=",".join(f"{word}={queue}" for word in queues),
        CELERY_BROKER_URL=args.broker,
        CELERY_BROKER_TRANSPORT_OPTIONS=json.dumps(options),
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
    )
    command = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker"]
    command += ["-Q", queue, "--concurrency", str(args.concurrency), "--loglevel", "INFO"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    process = spawn(command, env, log)

    def queue_and_hand_over() -> None:
        queue_messages(args.messages)
        ids = list(Message.objects.values_list("message_id", flat=True))
        handoff.hand_off(ids, clock.now(), Priority.NORMAL)

    try:
        wait_idle(process, log, "ready.")
        return drain(process, args.messages, sandbox, queue_and_hand_over)
    finally:
        stop(process)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
        import redis

        client = redis.Redis.from_url(args.broker)
        for key in client.scan_iter(match=f"{options['global_keyprefix']}*"):
            client.delete(key)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="default 2000")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="worker threads / Celery pool processes (default 16)",
    )
    parser.add_argument("--latency", type=float, default=0.02, help="default 0.02 s")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13", help="a Redis URL")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sandbox = SandboxProcess(balance=4 * args.messages)
    logs = Path(tempfile.mkdtemp(prefix="zhenzi-bench-dispatch-"))  # the workers' output
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            ZHENZI_API_URL=sandbox.url,
            ZHENZI_APP_ID=APP_ID,
            ZHENZI_APP_SECRET=APP_SECRET,
        )
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import setup_databases, teardown_databases

        databases = setup_databases(verbosity=0, interactive=False)
        try:
            print(
                f"database: {connection.vendor} {connection.settings_dict['NAME']}; "
                f"sandbox: {sandbox.url}; {args.messages} messages, {args.latency * 1000:.0f} ms "
                f"latency, concurrency {args.concurrency}",
                flush=True,
            )
            print_load()
            results = {
                "zhenzi_send_queued (threads)": run_worker(args, sandbox, logs / "worker.log"),
                "Celery (prefork, Redis)": run_celery(args, sandbox, logs / "celery.log"),
            }
            for name, (rate, cpu) in results.items():
                print(f"  {name:30} {rate:7.0f} msg/s   {cpu * 1000:6.2f} ms CPU per message")
            print_load()
        finally:
            connection.close()
            teardown_databases(databases, verbosity=0)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
