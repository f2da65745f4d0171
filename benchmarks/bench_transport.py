"""What one POST to the provider costs in CPU, by HTTP client: the reason the client's transport
is HTTP/1.1 of its own (``django_zhenzi/client/transport.py``). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_transport.py [--threads 16] [--requests 150] [--latency 0.02]

``--threads`` threads each send ``--requests`` form POSTs of a message to the sandbox (in its own
process, answering after ``--latency`` seconds), through:

1. ``ZhenziClient.send`` (the app's client, over ``client.transport``: the form built, the input
   checked, the answer's JSON read, as a worker sends);
2. a ``requests.Session`` (``session.post``, keep-alive);
3. the session's adapter given a prepared request, as the client sent until version 0.9 (it
   skipped ``Session.request``'s merge of the session's settings into each request);
4. urllib3's connection pool called directly (keep-alive);
5. ``http.client.HTTPConnection``, one kept per thread, with nothing around it (the client's
   transport until it wrote its own HTTP/1.1).

For each: the CPU time of this process (all threads) per request, and requests per second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
import urllib3  # noqa: E402

from benchmarks.bench_send_queued import (  # noqa: E402
    APP_ID,
    APP_SECRET,
    TEXT,
    SandboxProcess,
    print_load,
)
from django_zhenzi.client import ZhenziClient  # noqa: E402

NUMBER = "13800000000"
FORM = urlencode({"appId": APP_ID, "appSecret": APP_SECRET, "number": NUMBER, "message": TEXT})
HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}


def senders(url: str, threads: int) -> dict[str, Callable[[], None]]:
    """One POST of a message, by each client; each keeps its connections between calls."""
    client = ZhenziClient(url, APP_ID, APP_SECRET, pool_size=threads)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=threads)
    session.mount("http://", adapter)
    parts = urlsplit(url)
    pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=threads, retries=False)
    own = threading.local()
    body = FORM.encode()

    def through_client() -> None:
        client.send(NUMBER, TEXT)

    def through_requests() -> None:
        answer = session.post(f"{url}/sms/send.do", data=body, headers=HEADERS, timeout=10)
        json.loads(answer.content)

    def through_adapter() -> None:
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url, prepared.body = "POST", f"{url}/sms/send.do", body
        prepared.headers = requests.structures.CaseInsensitiveDict(
            {**session.headers, **HEADERS, "Content-Length": str(len(body))}
        )
        answer = adapter.send(prepared, timeout=10, verify=True, proxies={})
        json.loads(answer.content)

    def through_urllib3() -> None:
        answer = pool.urlopen(
            "POST", "/sms/send.do", body=body, headers=HEADERS, redirect=False, timeout=10
        )
        json.loads(answer.data)

    def through_http_client() -> None:
        connection = getattr(own, "connection", None)
        if connection is None:
            connection = own.connection = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=10
            )
        connection.request("POST", "/sms/send.do", body, HEADERS)
        json.loads(connection.getresponse().read())

    return {
        "ZhenziClient.send (its own HTTP/1.1)": through_client,
        "requests.Session.post": through_requests,
        "requests, the session's adapter (the client until 0.9)": through_adapter,
        "urllib3 HTTPConnectionPool.urlopen": through_urllib3,
        "http.client alone, one connection per thread": through_http_client,
    }


def measure(send: Callable[[], None], threads: int, requests_each: int) -> tuple[float, float]:
    """CPU µs per request (this process, all threads) and requests per second."""
    send()  # a first connection, outside the figures
    cpu, started = time.process_time(), time.perf_counter()
    workers = [
        threading.Thread(target=lambda: [send() for _ in range(requests_each)])
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    count = threads * requests_each
    return (time.process_time() - cpu) / count * 1e6, count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--requests", type=int, default=150, help="per thread")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds")
    args = parser.parse_args()
    sandbox = SandboxProcess(balance=100_000_000)
    try:
        sandbox.reset(args.latency)
        print(f"{args.threads} threads x {args.requests} POSTs, {args.latency * 1000:g} ms latency")
        print_load()
        for name, send in senders(sandbox.url, args.threads).items():
            cpu, rate = measure(send, args.threads, args.requests)
            print(f"  {name}: {cpu:.0f} µs CPU per request, {rate:.0f} requests/s", flush=True)
        print_load()
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
