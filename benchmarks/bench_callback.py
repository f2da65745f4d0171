"""What a delivery report costs on the callback: queries per report, and reports per second against
a bare Django view that does nothing. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/bench_callback.py [--reports 500] [--requests 1000] [--clients 20]
        [--server-processes 2]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/zhenzi_bench .venv/bin/python benchmarks/...

1. queries per report (target: at most 4), with CaptureQueriesContext over ``--reports`` reports:
   one report per request for known messages, for orphans, and in batches of 100;
2. requests per second, callback against a bare view (csrf-exempt, answers "ok", reads nothing),
   both on the same server with the same clients: Django's test client in this process, one
   request after another; then a threaded WSGI server (Django's, as runserver and live_server use)
   in a process of its own, as a site runs one (this script with ``--serve``, on the same test
   database), with 1 and ``--clients`` threads of this process sending over kept-alive
   connections (the app's own ``client.transport``): clients and server do not share a GIL.
   The ratio is the figure to read (target: at least 0.5 with ``--clients``, one process). The
   server keeps its database connections (``--conn-max-age``, 60 s), as a site taking reports at
   this rate would: with Django's default of 0 every request opens one, which costs more than the
   callback itself. Then the same with ``--server-processes`` (2) processes sharing one
   listening socket, as a site runs its web server on a machine with two cores (gunicorn's
   workers, for instance), with ``--clients`` clients. Each line gives the CPU per request of
   the server, of the clients, and of the whole machine (the database's included);
3. reports per second against messages per second: the callback taking batches of 100 reports
   (as Tencent Cloud and Yunpian send them, to the server of ``--server-processes``) and one
   report per request (from 2, with one server process and with several), from ``--clients``
   clients, against ``zhenzi_send_queued --concurrency 16`` (one process, in this process)
   sending 2,000 messages at 20 ms latency to the sandbox in its own process, in the same run
   (target: reports at least as fast as messages are sent).

It creates a throwaway test database from tests/settings.py (SQLite unless DATABASE_URL says
otherwise), as the test runner does, and drops it at the end. The server process gets the test
database's name in its environment (``BENCH_CALLBACK_DATABASE_NAME``; the rest of the connection
from the same settings and ``DATABASE_URL``) and prints only the address it serves on. Server
processes are stopped before the database is dropped, and stop by themselves when this process
ends, however it ends (each serves until its standard input closes).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.db import DEFAULT_DB_ALIAS, connection, connections  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_databases,
    setup_test_environment,
    teardown_databases,
    teardown_test_environment,
)
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from django_zhenzi.client.transport import Transport  # noqa: E402
from django_zhenzi.models import Message, Status, StatusReport  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME_VARIABLE = "BENCH_CALLBACK_DATABASE_NAME"
TOKEN = "bench-callback-token-0123456789"  # noqa: S105 (a benchmark-only token)
CALLBACK_PATH = f"/zhenzi/callback/{TOKEN}/"
BARE_PATH = "/bare/"
FORM = "application/x-www-form-urlencoded; charset=UTF-8"
QUERIES_PER_REPORT_TARGET = 4
BATCH = 100
RATIO_TARGET = 0.5


@csrf_exempt
def bare_view(request: HttpRequest) -> HttpResponse:
    """The floor: a Django view that does nothing."""
    return HttpResponse("ok")


class BenchUrls:
    """The URLconf: the app's URLs and the bare view, served side by side."""

    urlpatterns = [path("bare/", bare_view), path("zhenzi/", include("django_zhenzi.urls"))]


# The settings of every measurement, in this process and in the server process.
BENCH_SETTINGS = {
    "ROOT_URLCONF": BenchUrls,
    "DEBUG": False,
    "ZHENZI": {"CALLBACK_TOKEN": TOKEN, "BACKEND": "django_zhenzi.backends.dummy.SmsBackend"},
}


def sent_messages(count: int) -> list[str]:
    moment = timezone.now()
    rows = Message.objects.bulk_create(
        Message(number="13800138000", text="【测试】通知", status=Status.SENT, sent_at=moment)
        for _ in range(count)
    )
    return [row.message_id for row in rows]


def report_body(message_id: str) -> str:
    return urlencode(
        {
            "messageId": message_id,
            "toNumber": "13800138000",
            "status": "success",
            "errorCode": "DELIVRD",
            "reportTime": "2025-01-02 03:04:05",
            "appName": "bench-app",
        }
    )


TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"})


def kinds(queries: list[dict[str, str]]) -> Counter[str]:
    return Counter(query["sql"].split(None, 1)[0].upper() for query in queries)


def bench_queries(reports: int) -> None:
    client = Client()
    print(
        f"\nQueries per report over {reports} reports (target: at most {QUERIES_PER_REPORT_TARGET})"
    )

    def measure(label: str, send: Callable[[], int]) -> None:
        before = StatusReport.objects.count()
        connection.queries_log.clear()  # a full log would shift the captured slice
        with CaptureQueriesContext(connection) as captured:
            count = send()
        assert StatusReport.objects.count() - before == count
        counted = kinds(captured.captured_queries)
        control = sum(n for kind, n in counted.items() if kind in TRANSACTION_CONTROL)
        per_report = (counted.total() - control) / count
        verdict = "ok" if per_report <= QUERIES_PER_REPORT_TARGET else "OVER TARGET"
        detail = ", ".join(
            f"{kind} {n / count:.2f}"
            for kind, n in sorted(counted.items())
            if kind not in TRANSACTION_CONTROL
        )
        print(
            f"  {label:<36} {per_report:5.2f} {verdict:<11} ({detail}; "
            f"plus {control / count:.2f} BEGIN/COMMIT)"
        )

    def one_per_request(message_ids: list[str]) -> Callable[[], int]:
        def send() -> int:
            for message_id in message_ids:
                response = client.post(CALLBACK_PATH, report_body(message_id), content_type=FORM)
                assert response.status_code == 200
            return len(message_ids)

        return send

    def batches(message_ids: list[str]) -> int:
        for start in range(0, len(message_ids), BATCH):
            chunk = [
                {"messageId": i, "status": "DELIVRD"} for i in message_ids[start : start + BATCH]
            ]
            response = client.post(CALLBACK_PATH, chunk, content_type="application/json")
            assert response.status_code == 200
        return len(message_ids)

    known = sent_messages(reports)
    measure("known message, first report", one_per_request(known))
    measure("known message, replayed report", one_per_request(known))
    measure("unknown messageId (orphan)", one_per_request([f"orphan-{n}" for n in range(reports)]))
    fresh = sent_messages(reports)
    measure(f"known messages, batches of {BATCH}", lambda: batches(fresh))


def rate(count: int, clients: int, send: Callable[[int], Callable[[], None]]) -> float:
    """Requests per second: ``clients`` threads, each calling what ``send(number)`` gives."""
    per_client = count // clients
    start = threading.Barrier(clients + 1)
    failures: list[BaseException] = []

    def run(number: int) -> None:
        try:
            call = send(number)
            start.wait()
            for _ in range(per_client):
                call()
        except BaseException as failure:
            failures.append(failure)
            raise
        finally:
            connections.close_all()  # the test client's, which would outlive the thread

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise failures[0]
    return per_client * clients / elapsed


def bench_test_client(count: int, message_ids: list[str]) -> None:
    client = Client()
    bodies = [report_body(message_ids[n % len(message_ids)]) for n in range(count)]

    def post(target: str) -> Callable[[int], Callable[[], None]]:
        def sender(number: int) -> Callable[[], None]:
            sequence = iter(bodies)

            def call() -> None:
                response = client.post(target, next(sequence), content_type=FORM)
                assert response.status_code == 200, response.status_code

            return call

        return sender

    callback = rate(count, 1, post(CALLBACK_PATH))
    bare = rate(count, 1, post(BARE_PATH))
    print(f"\nDjango test client, in process, sequential, {count} requests")
    print(f"  callback {callback:8.0f}/s   bare view {bare:8.0f}/s   ratio {callback / bare:.2f}")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class NoDelayServer(ThreadedWSGIServer):
    """Django's threaded WSGI server on a listening socket it is given (``listen_fd``: the
    parent listens, its server processes share the socket), with Nagle's algorithm off: it
    writes headers and body separately, which with delayed ACKs costs each keep-alive request
    about 40 ms."""

    def __init__(self, listen_fd: int) -> None:
        self.listen_fd = listen_fd
        super().__init__(("127.0.0.1", 0), QuietHandler)

    def server_bind(self) -> None:
        self.socket.close()
        self.socket = socket.socket(fileno=self.listen_fd)
        self.socket.setblocking(False)  # a process that loses the race to accept goes on
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()

    def server_activate(self) -> None:
        """Nothing: the parent listens already."""

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


def http_rate(url: str, count: int, clients: int, message_ids: list[str], batch: int = 1) -> float:
    """Requests per second to ``url`` from ``clients`` threads sharing keep-alive connections
    (the app's own ``client.transport``: the clients' CPU per request is a quarter of a
    ``requests`` session's, left to the server); with ``batch`` > 1 each request carries that
    many reports, as a JSON array."""
    parts = urlsplit(url)
    content_type = FORM if batch == 1 else "application/json"
    transport = Transport(
        f"{parts.scheme}://{parts.netloc}",
        headers={"Content-Type": content_type},
        timeout=60,
        pool_size=clients,
    )

    def sender(number: int) -> Callable[[], None]:
        positions = iter(range(number, 10**9, clients))

        def body() -> bytes:
            if batch == 1:
                return report_body(message_ids[next(positions) % len(message_ids)]).encode()
            first = next(positions) * batch
            chunk = [
                {"messageId": message_ids[(first + n) % len(message_ids)], "status": "DELIVRD"}
                for n in range(batch)
            ]
            return json.dumps(chunk).encode()

        def call() -> None:
            reply = transport.post(parts.path, body())
            assert reply.status == 200, reply.status

        return call

    try:
        return rate(count, clients, sender)
    finally:
        transport.close()


def serve_until_stdin_closes(conn_max_age: int, listen_fd: int) -> None:
    """The server process (``--serve``): Django's threaded WSGI server on the listening socket it
    was given (``--listen-fd``, shared with the other server processes: whichever accepts first
    takes a connection), on the parent's test database, until its standard input closes (the
    parent stopping it, or ending). Prints the address it serves on, nothing else."""
    database = connections.settings[DEFAULT_DB_ALIAS]  # the dict every thread's connection uses
    database["NAME"] = os.environ[DATABASE_NAME_VARIABLE]
    database["CONN_MAX_AGE"] = conn_max_age
    with override_settings(**BENCH_SETTINGS):
        server = NoDelayServer(listen_fd)
        server.set_app(WSGIHandler())

        def stop_when_stdin_closes() -> None:
            sys.stdin.buffer.read()
            server.shutdown()

        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
        print(f"serving on http://127.0.0.1:{server.server_address[1]}", flush=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()
            connections.close_all()


class Server:
    """This script with ``--serve`` in ``processes`` processes of their own, sharing one listening
    socket as a pre-forking server's workers do (the process that accepts first takes a
    connection): the callback and the bare view on this process's test database, the clients
    here sharing no GIL with them. The backlog is 128 (Django's runserver has 10, gunicorn 2048):
    with 10, the clients connecting at once overflowed it, and each refused connection waited a
    second for its SYN to be sent again."""

    def __init__(self, conn_max_age: int, processes: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        env = {**os.environ, DATABASE_NAME_VARIABLE: str(connection.settings_dict["NAME"])}
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            f"--conn-max-age={conn_max_age}",
            f"--listen-fd={self.listener.fileno()}",
        ]
        self.processes = [
            subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.errors,
                pass_fds=(self.listener.fileno(),),
            )
            for _ in range(processes)
        ]
        atexit.register(self.stop)
        for process in self.processes:
            first_line = process.stdout.readline().decode() if process.stdout else ""
            if not first_line.startswith("serving on "):
                self.stop()  # prints what they wrote to stderr
                raise SystemExit("a server process did not start")

    def describe(self) -> str:
        pids = ", ".join(str(process.pid) for process in self.processes)
        count = len(self.processes)
        return f"{count} process{'es' if count > 1 else ''} of its own (pid {pids})"

    def cpu_seconds(self) -> float:
        """User and system CPU time the server processes have used so far (Linux's /proc)."""
        total = 0
        for process in self.processes:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def error_output(self) -> str:
        """What they wrote to stderr, the database password (if any) hidden."""
        self.errors.seek(0)
        output = self.errors.read().decode(errors="replace")
        password = connection.settings_dict.get("PASSWORD")
        return output.replace(password, "********") if password else output

    def stop(self) -> None:
        """Close their standard input, which stops them; kill one that has not stopped in 10 s."""
        for process in self.processes:
            if process.stdin and not process.stdin.closed:
                process.stdin.close()
        failed = []
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout and not process.stdout.closed:
                process.stdout.close()
            if process.returncode not in (0, None):
                failed.append(f"{process.pid} exited with {process.returncode}")
        if failed and not self.errors.closed:
            print(f"server process {'; '.join(failed)}", file=sys.stderr)
            print(self.error_output(), file=sys.stderr)
        if not self.errors.closed:
            self.errors.close()
        self.listener.close()
        atexit.unregister(self.stop)


def bench_http(
    server: Server,
    count: int,
    client_counts: list[int],
    conn_max_age: int,
    message_ids: list[str],
) -> float:
    """Prints callback against bare view for each of ``client_counts``; returns the callback's
    rate with the last (the most clients)."""
    print(
        f"\nDjango's threaded WSGI server (TCP_NODELAY) in {server.describe()}, clients on "
        f"kept-alive connections in this one, {count} requests per run, "
        f"CONN_MAX_AGE {conn_max_age}"
    )
    print_load()

    def measure(target: str, client_count: int) -> tuple[float, float, float, float]:
        """Requests per second, and CPU ms per request of the server, of the clients and of
        the whole machine (the database's included)."""
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        machine_cpu = machine_cpu_seconds()
        per_second = http_rate(server.url + target, count, client_count, message_ids)
        machine_cpu = machine_cpu_seconds() - machine_cpu
        server_cpu = server.cpu_seconds() - server_cpu
        client_cpu = time.process_time() - client_cpu
        done = count // client_count * client_count
        return (
            per_second,
            server_cpu * 1000 / done,
            client_cpu * 1000 / done,
            machine_cpu * 1000 / done,
        )

    callback = 0.0
    for client_count in client_counts:
        callback, callback_server, callback_clients, callback_all = measure(
            CALLBACK_PATH, client_count
        )
        bare, bare_server, bare_clients, bare_all = measure(BARE_PATH, client_count)
        verdict = ""
        if client_count > 1 and len(server.processes) == 1:  # the target's setting
            verdict = f" (target: at least {RATIO_TARGET}) " + (
                "OK" if callback / bare >= RATIO_TARGET else "BELOW TARGET"
            )
        print(
            f"  {client_count:>2} client(s): callback {callback:8.0f}/s   "
            f"bare view {bare:8.0f}/s   ratio {callback / bare:.2f}{verdict}\n"
            f"      CPU ms per request, server: callback {callback_server:.2f}, "
            f"bare view {bare_server:.2f}; clients: {callback_clients:.2f}, {bare_clients:.2f}; "
            f"whole machine: {callback_all:.2f}, {bare_all:.2f}"
        )
    return callback


def bench_against_sending(
    args: argparse.Namespace, server: Server, one_per_request: dict[str, float]
) -> None:
    """Reports per second the callback takes against messages per second the worker sends:
    batches (measured here, on ``server``) and ``one_per_request`` (rates by label, measured
    before)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_send_queued import APP_ID, APP_SECRET, SandboxProcess, worker_throughput

    print(
        f"\nReports per second against messages sent per second, {args.clients} clients, "
        f"batches to the server in {server.describe()}"
    )
    print_load()
    message_ids = sent_messages(BATCH * args.clients)
    url = server.url + CALLBACK_PATH
    batched = BATCH * http_rate(url, args.batch_requests, args.clients, message_ids, BATCH)
    sandbox = SandboxProcess(balance=10 * args.worker_messages)
    try:
        sandbox.reset(0.02)
        zhenzi = {
            "API_URL": sandbox.url,
            "APP_ID": APP_ID,
            "APP_SECRET": APP_SECRET,
            "CALLBACK_TOKEN": TOKEN,
        }
        with override_settings(ZHENZI=zhenzi):
            sending, cpu = worker_throughput(args.worker_messages, 16, sandbox)
    finally:
        sandbox.stop()
    print(
        f"  zhenzi_send_queued --concurrency 16, 20 ms latency: {sending:.0f} msg/s "
        f"({cpu * 1000:.2f} ms CPU per message)"
    )
    for label, reports in {f"batches of {BATCH} reports": batched, **one_per_request}.items():
        verdict = "OK" if reports >= sending else "BELOW"
        print(
            f"  callback, {label}: {reports:.0f} reports/s, {reports / sending:.2f}x the "
            f"sending rate {verdict}"
        )
    print_load()


def wait_for_other_sessions_to_end(timeout: float = 10) -> None:
    """PostgreSQL ends a closed connection's session a moment after the client is gone, and
    refuses to drop a database with sessions: wait (at most ``timeout`` seconds) for the server
    process's sessions to end."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


def machine_cpu_seconds() -> float:
    """CPU time every process of the machine has used so far, its database's included: the
    first line of Linux's /proc/stat, idle and I/O wait left out."""
    user, nice, system, _idle, _iowait, irq, softirq, steal, *_ = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def print_load() -> None:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"  load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reports", type=int, default=500, help="reports per query-count run (default 500)"
    )
    parser.add_argument(
        "--requests", type=int, default=1000, help="requests per throughput run (default 1000)"
    )
    parser.add_argument(
        "--clients", type=int, default=20, help="concurrent HTTP clients (default 20)"
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="the server's CONN_MAX_AGE for the HTTP runs; 0 is Django's default (default 60)",
    )
    parser.add_argument(
        "--batch-requests",
        type=int,
        default=200,
        help=f"requests of {BATCH} reports in the comparison with sending (default 200)",
    )
    parser.add_argument(
        "--worker-messages",
        type=int,
        default=2000,
        help="messages the worker sends in the comparison; 0 skips it (default 2000)",
    )
    parser.add_argument(
        "--server-processes",
        type=int,
        default=2,
        help="server processes for the second HTTP run and the batches, as a site runs one "
        "per core (default 2)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve:
        serve_until_stdin_closes(args.conn_max_age, args.listen_fd)
        return
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    server = None
    try:
        with override_settings(**BENCH_SETTINGS):
            print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
            bench_queries(args.reports)
            message_ids = sent_messages(200)
            bench_test_client(args.requests, message_ids)
            # The worker in section 3 runs here, with the server's persistent connections.
            connections.settings[DEFAULT_DB_ALIAS]["CONN_MAX_AGE"] = args.conn_max_age
            connection.settings_dict["CONN_MAX_AGE"] = args.conn_max_age
            server = Server(args.conn_max_age, 1)
            client_counts = sorted({1, args.clients})
            one_per_request = {
                "one report per request, 1 server process": bench_http(
                    server, args.requests, client_counts, args.conn_max_age, message_ids
                )
            }
            if args.server_processes > 1:
                server.stop()
                server = Server(args.conn_max_age, args.server_processes)
                label = f"one report per request, {args.server_processes} server processes"
                one_per_request[label] = bench_http(
                    server, args.requests, [args.clients], args.conn_max_age, message_ids
                )
            if args.worker_messages:
                bench_against_sending(args, server, one_per_request)
    finally:
        if server is not None:
            server.stop()  # before the database is dropped: it holds connections to it
            wait_for_other_sessions_to_end()
        connection.close()
        teardown_databases(databases, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
