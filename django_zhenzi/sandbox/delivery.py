"""Delivery of status reports to the callback URL, with retries.

Each report is POSTed on its own in the sandbox's ``report_format``: ``form`` (form fields),
``json`` (a JSON object) or ``json-array`` (a JSON array holding the one report). A 2xx answer
counts as delivered; any other answer, or none, is retried MAX_RETRIES times, ``retry_delay`` apart.

A few worker threads share one heap of pending reports ordered by due time, guarded by the
sandbox's lock: no thread per report, and a slow callback does not hold up every other report.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .provider import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE

REPORT_FORMATS = ("form", "json", "json-array")
MAX_RETRIES = 3
DELIVERY_WORKERS = 4
DELIVERY_TIMEOUT = 5.0
STOP_JOIN_SECONDS = 1.0

# The callback is a local URL in development and tests: never send it through an environment proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def encode_report(report: dict[str, str], report_format: str) -> tuple[bytes, str]:
    """The request body and its Content-Type for one report in ``report_format``."""
    if report_format == "form":
        return urlencode(report).encode("ascii"), FORM_CONTENT_TYPE
    payload: Any = [report] if report_format == "json-array" else report
    return json.dumps(payload, ensure_ascii=False).encode("utf-8"), JSON_CONTENT_TYPE


def post(url: str, body: bytes, content_type: str) -> tuple[int | None, str | None]:
    """POST ``body``; returns (HTTP status, None), or (None, error text) when no answer came."""
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked when the sandbox is built)
        url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with _opener.open(request, timeout=DELIVERY_TIMEOUT) as response:
            response.read()
            return response.status, None
    except urllib.error.HTTPError as http_error:
        http_error.close()
        return http_error.code, None
    except (OSError, ValueError) as failure:
        return None, f"{type(failure).__name__}: {failure}"


@dataclass
class PendingReport:
    report: dict[str, str]
    generation: int
    attempt: int = 1


class ReportDispatcher:
    """Posts each scheduled report when it falls due; retries a failed delivery MAX_RETRIES times.

    Methods without their own locking (``schedule``, ``clear``, ``attempts``, ``delivered``) are
    called with the sandbox lock held, so a send records its message and schedules its report
    in one critical section.
    """

    def __init__(
        self, lock: threading.Lock, url: str, report_format: str, retry_delay: float
    ) -> None:
        self.url = url
        self.report_format = report_format
        self.retry_delay = retry_delay
        self.attempts: list[dict[str, Any]] = []
        self.delivered = 0
        self._due = threading.Condition(lock)
        self._changed = threading.Condition(lock)
        self._heap: list[tuple[float, int, PendingReport]] = []
        self._order = itertools.count()
        self._generation = 0
        self._stopped = False
        self._threads = [
            threading.Thread(
                target=self._work, name=f"zhenzi-sandbox-reports-{number}", daemon=True
            )
            for number in range(DELIVERY_WORKERS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the workers; a delivery in flight gets a moment to finish."""
        with self._due:
            self._stopped = True
            self._due.notify_all()
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def schedule(self, due: float, report: dict[str, str]) -> None:
        """Deliver ``report`` at ``due`` (a ``time.monotonic()`` value). Lock held."""
        pending = PendingReport(report, self._generation)
        heapq.heappush(self._heap, (due, next(self._order), pending))
        self._due.notify()

    def clear(self) -> None:
        """Forget pending and past reports; deliveries in flight go unrecorded. Lock held."""
        self._heap.clear()
        self.attempts.clear()
        self.delivered = 0
        self._generation += 1

    def wait_for_deliveries(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` reports were delivered successfully (lock not held)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.delivered >= count, timeout)

    def _work(self) -> None:
        while (pending := self._next_due()) is not None:
            body, content_type = encode_report(pending.report, self.report_format)
            status, failure = post(self.url, body, content_type)
            self._record(pending, status, failure)

    def _next_due(self) -> PendingReport | None:
        with self._due:
            while not self._stopped:
                if not self._heap:
                    self._due.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._due.wait(wait)
            return None

    def _record(self, pending: PendingReport, status: int | None, failure: str | None) -> None:
        ok = status is not None and 200 <= status < 300
        with self._changed:
            if pending.generation != self._generation:
                return
            self.attempts.append(
                {
                    "messageId": pending.report["messageId"],
                    "status": pending.report["status"],
                    "url": self.url,
                    "attempt": pending.attempt,
                    "ok": ok,
                    "http_status": status,
                    "error": failure,
                }
            )
            if ok:
                self.delivered += 1
            elif pending.attempt <= MAX_RETRIES and not self._stopped:
                pending.attempt += 1
                retry_at = time.monotonic() + self.retry_delay
                heapq.heappush(self._heap, (retry_at, next(self._order), pending))
                self._due.notify()
            self._changed.notify_all()
