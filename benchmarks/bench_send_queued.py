"""How fast ``zhenzi_send_queued`` drains the queue, how many queries a message costs, and how much
memory a worker needs. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/bench_send_queued.py [--messages 2000] [--memory-messages 100000]

Against a sandbox in its own process (``python -m django_zhenzi.sandbox``), so it does not share
the GIL with the worker:

1. throughput: ``zhenzi_send_queued --concurrency 16`` draining ``--messages`` queued messages with
   20 ms added latency, and its CPU per message (target: at most 0.8 ms), then the same with
   ``--processes 2``, against a sequential loop of form POSTs opening a new connection per
   message, the way the provider's official Python client sends (target: at least 10x);
2. queries per sent message in a single-thread run, split into the batch's claim queries and the
   queries of each message (target: at most 3 per message, claims excluded);
3. peak memory (RSS) of a worker process draining ``--memory-messages`` queued messages with no
   added latency (target: under 150 MB).

The database is PostgreSQL unless ``DATABASE_URL`` says otherwise (see benchmarks/settings.py);
the script creates and drops ``test_<name>`` on it. See benchmarks/README.rst.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "benchmarks.settings"
APP_ID = "bench-app"
APP_SECRET = "bench-secret-value"  # noqa: S105 (the local sandbox's fake credential)
TEXT = "【测试】您的订单已发货"
FIRST_NUMBER = 13800000000
CREATE_CHUNK = 5000
APP_DIR = str(REPO_ROOT / "django_zhenzi") + os.sep
DISPATCH_FILE = os.path.join(APP_DIR + "services", "dispatch.py")

THROUGHPUT_RATIO_TARGET = 10
CPU_PER_MESSAGE_TARGET_MS = 0.8
QUERIES_PER_MESSAGE_TARGET = 3
PEAK_RSS_TARGET_MB = 150


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), **extra}


class SandboxProcess:
    """``python -m django_zhenzi.sandbox`` on a free port, steered over its control API."""

    def __init__(self, balance: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django_zhenzi.sandbox",
                "--port=0",
                f"--app-id={APP_ID}",
                f"--app-secret={APP_SECRET}",
                f"--balance={balance}",
            ],
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first_line = self.process.stdout.readline() if self.process.stdout else ""
        found = re.search(r"serving on (\S+)", first_line)
        if not found:
            self.stop()
            raise SystemExit(f"the sandbox did not start: {first_line!r}")
        self.url = found.group(1)

    def control(self, action: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        request = Request(  # noqa: S310 (our own loopback sandbox)
            f"{self.url}/_sandbox/{action}",
            data=data,
            method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return json.loads(response.read())

    def reset(self, latency: float) -> None:
        """Forget every message and counter; answer every API call after ``latency`` seconds."""
        self.control("reset", {})
        self.control("faults", {"latency": latency})

    def accepted(self) -> int:
        return self.control("state")["message_count"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.communicate(timeout=30)


# --- The database ---------------------------------------------------------------------------------


def worker_database_url() -> str:
    """DATABASE_URL of the benchmark's (test) database, for the worker process."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    user = quote(settings["USER"] or "", safe="")
    password = quote(settings["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    return f"postgres://{credentials}{settings['HOST'] or ''}{port}/{quote(settings['NAME'])}"


def queue_messages(count: int, *, progress: bool = False) -> None:
    """``count`` queued free-text messages, due now, inserted in chunks."""
    from django.utils import timezone

    from django_zhenzi.models import Message

    moment = timezone.now()
    for start in range(0, count, CREATE_CHUNK):
        Message.objects.bulk_create(
            Message(
                number=str(FIRST_NUMBER + index),
                text=TEXT,
                created_at=moment,
                next_attempt_at=moment,
                status_changed_at=moment,
            )
            for index in range(start, min(start + CREATE_CHUNK, count))
        )
        done = min(start + CREATE_CHUNK, count)
        if progress and (done % 20000 == 0 or done == count):
            print(f"  queued {done}/{count}", flush=True)


def empty_queue() -> None:
    from django_zhenzi.models import Message

    Message.objects.all().delete()


def sent_count() -> int:
    from django_zhenzi.models import Message, Status

    return Message.objects.filter(status=Status.SENT).count()


def check_all_sent(expected: int, sandbox: SandboxProcess) -> None:
    """A figure means nothing unless every message went out exactly once: stop if not."""
    sent, accepted = sent_count(), sandbox.accepted()
    if sent != expected or accepted != expected:
        raise SystemExit(f"expected {expected} sent; the queue says {sent}, the sandbox {accepted}")


# --- 1. Throughput --------------------------------------------------------------------------------


def worker_throughput(count: int, concurrency: int, sandbox: SandboxProcess) -> tuple[float, float]:
    """Messages per second of ``zhenzi_send_queued --concurrency`` draining ``count`` messages,
    and the CPU seconds the worker (this process, all threads) spent per message."""
    from django.core.management import call_command

    empty_queue()
    queue_messages(count)
    started, cpu_started = time.perf_counter(), time.process_time()
    call_command("zhenzi_send_queued", concurrency=concurrency, verbosity=0)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    check_all_sent(count, sandbox)
    return count / elapsed, cpu / count


def official_client_throughput(count: int, sandbox: SandboxProcess) -> float:
    """Messages per second of a sequential loop of form POSTs, one new connection each, as the
    provider's official Python client sends them (``urllib.request.urlopen``)."""
    url = f"{sandbox.url}/sms/send.do"
    started = time.perf_counter()
    for index in range(count):
        fields = {
            "appId": APP_ID,
            "appSecret": APP_SECRET,
            "number": str(FIRST_NUMBER + index),
            "message": TEXT,
            "messageId": uuid.uuid4().hex,
        }
        request = Request(url, data=urlencode(fields).encode())  # noqa: S310 (loopback)
        with urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            answer = json.loads(response.read())
        if answer.get("code") != 0:
            raise SystemExit(f"the sandbox refused a message: {answer}")
    return count / (time.perf_counter() - started)


def processes_throughput(
    count: int, processes: int, concurrency: int, sandbox: SandboxProcess
) -> tuple[float, float, float]:
    """``zhenzi_send_queued --processes`` draining ``count`` messages, as a process of its own:
    messages per second from the first message the sandbox accepted to the last, the whole
    command's time (with the start of its interpreters), and the CPU seconds per message of the
    command and its worker processes together (start-up included)."""
    empty_queue()
    queue_messages(count)
    env = child_env(DATABASE_URL=worker_database_url(), ZHENZI_API_URL=sandbox.url)
    command = [
        sys.executable,
        "-m",
        "django",
        "zhenzi_send_queued",
        f"--settings={SETTINGS_MODULE}",
        f"--processes={processes}",
        f"--concurrency={concurrency}",
        "--verbosity=0",
    ]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    worker = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
    first = last = None
    while worker.poll() is None:
        accepted = sandbox.accepted()
        moment = time.perf_counter()
        if accepted and first is None:
            first = moment
        if accepted >= count and last is None:
            last = moment
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    _, stderr = worker.communicate()
    if worker.returncode != 0:
        raise SystemExit(f"the worker exited with {worker.returncode}:\n{stderr}")
    check_all_sent(count, sandbox)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    sending = (last or time.perf_counter()) - (first or started)
    return count / sending, elapsed, cpu / count


def bench_throughput(args: argparse.Namespace, sandbox: SandboxProcess) -> None:
    print(f"\n1. Throughput, {args.latency * 1000:g} ms added latency per API call", flush=True)
    print_load()
    sandbox.reset(args.latency)
    worker, cpu_per_message = worker_throughput(args.messages, args.concurrency, sandbox)
    cpu_ms = cpu_per_message * 1000
    print(
        f"  zhenzi_send_queued --concurrency {args.concurrency}: {args.messages} messages, "
        f"{worker:.0f} msg/s",
        flush=True,
    )
    print(
        f"  worker CPU: {cpu_ms:.2f} ms per message (all threads; target: at most "
        f"{CPU_PER_MESSAGE_TARGET_MS} ms) "
        f"{'OK' if cpu_ms <= CPU_PER_MESSAGE_TARGET_MS else 'ABOVE TARGET'}",
        flush=True,
    )
    several = None
    if args.processes > 1:
        sandbox.reset(args.latency)
        several, elapsed, cpu = processes_throughput(
            args.messages, args.processes, args.concurrency, sandbox
        )
        print(
            f"  zhenzi_send_queued --processes {args.processes} --concurrency "
            f"{args.concurrency}: {several:.0f} msg/s from the first message sent to the last "
            f"({args.messages / elapsed:.0f} msg/s counting the {elapsed:.1f} s of the whole "
            f"command, start-up included); CPU {cpu * 1000:.2f} ms per message, start-up "
            "included",
            flush=True,
        )
    sandbox.reset(args.latency)
    sequential = official_client_throughput(args.sequential, sandbox)
    print(
        f"  sequential urlopen, new connection per message: {args.sequential} messages, "
        f"{sequential:.1f} msg/s"
    )
    ratio = worker / sequential
    print(
        f"  ratio, one process: {ratio:.1f}x (target: at least {THROUGHPUT_RATIO_TARGET}x) "
        f"{'OK' if ratio >= THROUGHPUT_RATIO_TARGET else 'BELOW TARGET'}"
    )
    if several is not None:
        print(f"  ratio, --processes {args.processes}: {several / sequential:.1f}x")
    print_load()


# --- 2. Queries per message -----------------------------------------------------------------------


class QueryCounter:
    """A connection execute wrapper counting queries by the django_zhenzi function that ran
    them, and whether they ran for one message (inside ``services.dispatch.send_claimed``) or for a
    whole batch."""

    def __init__(self) -> None:
        self.per_message: Counter[str] = Counter()
        self.per_batch: Counter[str] = Counter()

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        callers = list(app_functions(sys._getframe(1)))
        innermost = callers[0][1] if callers else "(outside django_zhenzi)"
        for_one_message = (DISPATCH_FILE, "send_claimed") in callers
        (self.per_message if for_one_message else self.per_batch)[innermost] += 1
        return execute(sql, params, many, context)


def app_functions(frame: FrameType | None) -> Iterator[tuple[str, str]]:
    """(file, function) of the django_zhenzi frames on the stack, innermost first."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(APP_DIR):
            yield frame.f_code.co_filename, frame.f_code.co_name
        frame = frame.f_back


def bench_queries(args: argparse.Namespace, sandbox: SandboxProcess) -> None:
    from django.core.management import call_command
    from django.db import connection

    print(f"\n2. Queries per message, one thread, {args.query_messages} messages", flush=True)
    sandbox.reset(0)
    empty_queue()
    queue_messages(args.query_messages)
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        call_command("zhenzi_send_queued", concurrency=1, verbosity=0)
    check_all_sent(args.query_messages, sandbox)

    per_message = sum(counter.per_message.values())
    per_batch = sum(counter.per_batch.values())
    batches = counter.per_batch["look_at_queue"]  # each pass starts with one look
    print(f"  total queries: {per_message + per_batch}")
    print(
        f"  claim queries: {per_batch} in {batches} worker passes ("
        + ", ".join(f"{name} {count}" for name, count in counter.per_batch.most_common())
        + ")"
    )
    print(
        f"  per-message queries: {per_message} ("
        + ", ".join(f"{name} {count}" for name, count in counter.per_message.most_common())
        + ")"
    )
    ratio = per_message / args.query_messages
    print(
        f"  per sent message, claims excluded: {ratio:.2f} "
        f"(target: at most {QUERIES_PER_MESSAGE_TARGET}) "
        f"{'OK' if ratio <= QUERIES_PER_MESSAGE_TARGET else 'ABOVE TARGET'}"
    )
    with_claims = (per_message + per_batch) / args.query_messages
    print(f"  per sent message, claims included: {with_claims:.2f}")


# --- 3. Peak memory -------------------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def bench_memory(args: argparse.Namespace, sandbox: SandboxProcess) -> None:
    count = args.memory_messages
    print(
        f"\n3. Peak memory of a worker process draining {count} messages "
        f"(--concurrency {args.memory_concurrency}, no added latency)",
        flush=True,
    )
    sandbox.reset(0)
    empty_queue()
    queue_messages(count, progress=True)
    env = child_env(DATABASE_URL=worker_database_url(), ZHENZI_API_URL=sandbox.url)
    command = [
        sys.executable,
        "-m",
        "django",
        "zhenzi_send_queued",
        f"--settings={SETTINGS_MODULE}",
        f"--concurrency={args.memory_concurrency}",
    ]
    started = time.perf_counter()
    worker = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    polled_peak = 0
    next_report = started + args.progress_every
    while worker.poll() is None:
        polled_peak = max(polled_peak, peak_rss_kib(worker.pid))
        if time.perf_counter() >= next_report:
            next_report += args.progress_every
            done = sent_count()
            rate = done / (time.perf_counter() - started)
            print(
                f"  sent {done}/{count} ({rate:.0f} msg/s), peak RSS so far "
                f"{polled_peak / 1024:.1f} MB",
                flush=True,
            )
        time.sleep(0.1)
    stdout, stderr = worker.communicate()
    elapsed = time.perf_counter() - started
    if worker.returncode != 0:
        raise SystemExit(f"the worker exited with {worker.returncode}:\n{stderr}")
    check_all_sent(count, sandbox)
    # ru_maxrss also counts this script's own memory, copied into the child at fork time before
    # the exec: an upper bound only. VmHWM is the peak of the worker's own image.
    forked_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_mb = polled_peak / 1024
    print(f"  worker: {stdout.strip()}")
    print(f"  drained {count} messages in {elapsed:.1f} s ({count / elapsed:.0f} msg/s)")
    print(
        f"  peak RSS: {peak_mb:.1f} MB (target: under {PEAK_RSS_TARGET_MB} MB) "
        f"{'OK' if peak_mb < PEAK_RSS_TARGET_MB else 'ABOVE TARGET'}"
    )
    print(
        f"  (ru_maxrss after exit: {forked_peak / 1024:.1f} MB, an upper bound that includes "
        f"this script's memory at fork time)"
    )


# --- Running it -----------------------------------------------------------------------------------


def print_load() -> None:
    """The machine's load, since figures from a busy machine are low."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages",
        type=int,
        default=2000,
        help="messages the worker drains in the throughput run (default 2000)",
    )
    parser.add_argument(
        "--sequential",
        type=int,
        default=300,
        help="messages the sequential loop sends (default 300)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="worker threads in the throughput run (default 16)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="worker processes in the second throughput run; 1 skips it (default 2)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.02,
        help="seconds the sandbox adds to each API call (default 0.02)",
    )
    parser.add_argument(
        "--query-messages",
        type=int,
        default=500,
        help="messages in the query-count run (default 500)",
    )
    parser.add_argument(
        "--memory-messages",
        type=int,
        default=100_000,
        help="messages the worker process drains in the memory run; 0 skips it (default 100000)",
    )
    parser.add_argument(
        "--memory-concurrency",
        type=int,
        default=4,
        help="worker threads in the memory run (default 4)",
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        help="seconds between progress lines in the memory run (default 10)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    total = 2 * args.messages + args.sequential + args.query_messages + args.memory_messages
    sandbox = SandboxProcess(balance=2 * total)
    try:
        # Read by benchmarks/settings.py, here and in the worker process.
        os.environ.update(
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            ZHENZI_API_URL=sandbox.url,
            ZHENZI_APP_ID=APP_ID,
            ZHENZI_APP_SECRET=APP_SECRET,
        )
        sys.path.insert(0, str(REPO_ROOT))
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import setup_databases, teardown_databases

        databases = setup_databases(verbosity=0, interactive=False)
        try:
            print(
                f"database: {connection.vendor} {connection.settings_dict['NAME']}; "
                f"sandbox: {sandbox.url} (own process)",
                flush=True,
            )
            print_load()
            bench_throughput(args, sandbox)
            bench_queries(args, sandbox)
            if args.memory_messages:
                bench_memory(args, sandbox)
            print_load()
        finally:
            connection.close()
            teardown_databases(databases, verbosity=0)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
