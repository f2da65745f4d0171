"""What a delivery report costs on the callback: queries per report, and reports per second against
a bare Django view that does nothing. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/bench_callback.py [--reports 500] [--requests 1000] [--clients 20]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/zhenzi_bench .venv/bin/python benchmarks/...

1. queries per report (target: at most 4), with CaptureQueriesContext over ``--reports`` reports:
   one report per request for known messages, for orphans, and in batches of 100;
2. requests per second, callback against a bare view (csrf-exempt, answers "ok", reads nothing),
   both on the same server with the same clients: Django's test client in this process, one
   request after another; then a threaded WSGI server (Django's, as runserver and live_server use)
   with 1 and ``--clients`` keep-alive ``requests`` sessions in threads. Server and clients share
   this process (and its GIL), which slows both sides alike; the ratio is the figure to read.

It creates a throwaway test database from tests/settings.py (SQLite unless DATABASE_URL says
otherwise), as the test runner does, and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

import requests  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.db import connection  # noqa: E402
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

from django_zhenzi.models import Message, Status, StatusReport  # noqa: E402

TOKEN = "bench-callback-token-0123456789"  # noqa: S105 (a benchmark-only token)
CALLBACK_PATH = f"/zhenzi/callback/{TOKEN}/"
BARE_PATH = "/bare/"
FORM = "application/x-www-form-urlencoded; charset=UTF-8"
QUERIES_PER_REPORT_TARGET = 4
BATCH = 100


@csrf_exempt
def bare_view(request: HttpRequest) -> HttpResponse:
    """The floor: a Django view that does nothing."""
    return HttpResponse("ok")


class BenchUrls:
    """The URLconf: the app's URLs and the bare view, served side by side."""

    urlpatterns = [path("bare/", bare_view), path("zhenzi/", include("django_zhenzi.urls"))]


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
    """Django's threaded WSGI server with Nagle's algorithm off: it writes headers and body
    separately, which with delayed ACKs costs each keep-alive request about 40 ms."""

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


def http_rate(url: str, count: int, clients: int, message_ids: list[str]) -> float:
    """Requests per second to ``url`` from ``clients`` keep-alive sessions."""
    sessions: list[requests.Session] = []

    def sender(number: int) -> Callable[[], None]:
        session = requests.Session()
        session.trust_env = False  # loopback only, never an environment proxy
        sessions.append(session)
        positions = iter(range(number, 10**9, clients))

        def call() -> None:
            body = report_body(message_ids[next(positions) % len(message_ids)])
            with session.post(
                url, data=body, headers={"Content-Type": FORM}, timeout=60
            ) as response:
                assert response.status_code == 200, response.status_code

        return call

    try:
        return rate(count, clients, sender)
    finally:
        for session in sessions:
            session.close()


def bench_http(count: int, clients: int, message_ids: list[str]) -> None:
    server = NoDelayServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print(
        f"\nDjango's threaded WSGI server (TCP_NODELAY), keep-alive requests sessions, "
        f"{count} requests per run"
    )
    try:
        for client_count in sorted({1, clients}):
            callback = http_rate(base + CALLBACK_PATH, count, client_count, message_ids)
            bare = http_rate(base + BARE_PATH, count, client_count, message_ids)
            print(
                f"  {client_count:>2} client(s): callback {callback:8.0f}/s   "
                f"bare view {bare:8.0f}/s   ratio {callback / bare:.2f}"
            )
    finally:
        server.shutdown()
        server.server_close()


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        with override_settings(
            ROOT_URLCONF=BenchUrls,
            DEBUG=False,
            ZHENZI={"CALLBACK_TOKEN": TOKEN, "BACKEND": "django_zhenzi.backends.dummy.SmsBackend"},
        ):
            print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
            bench_queries(args.reports)
            message_ids = sent_messages(200)
            bench_test_client(args.requests, message_ids)
            bench_http(args.requests, args.clients, message_ids)
    finally:
        connection.close()
        teardown_databases(databases, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
