"""A Zhenzi-compatible SMS server: the sandbox's state, rules, faults and HTTP handling.

API endpoints (all POST, form-encoded, answering ``{"code": ..., "data": ...}`` with HTTP 200):
``/sms/send.do``, ``/sms/v2/send.do``, ``/account/balance.do``, ``/smslog/findSmsByMessageId.do``.
The rules a request is checked against are in ``rules.py``.

The "late" fault models a provider that answers too late for the client (the request is held
``hang_seconds``, then its connection closed, like "timeout") but processes the request all the
same, and only records the accepted message ``late_seconds`` after the request arrived. The
request is checked, charged and counted against the daily cap when it arrives; until its record
time the message is *pending*: ``findSmsByMessageId`` answers ``null``, ``accepted_count`` is 0
and the message is not listed, yet its messageId is taken, so a repeat sent meanwhile is refused
like any repeat (``{"code": 100, "data": "messageId重复"}``), as a provider holding the first
request in flight would. A "late" request the rules refuse (108, 109...) records nothing; on the
balance and find endpoints "late" is the same as "timeout".

Control endpoints under ``/_sandbox/`` (never subject to faults) let another process inspect and
steer the sandbox: ``GET state``, ``GET counts``, ``GET messages/<messageId>``,
``POST faults``, ``POST balance``, ``POST reset`` (JSON bodies and answers).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .delivery import REPORT_FORMATS, ReportDispatcher
from .faults import (
    UNPROCESSED_FAULTS,
    FaultPlan,
    check_fault_count,
    check_fault_kind,
    check_fault_rates,
    check_non_negative,
    check_non_negative_int,
)
from .handler import SandboxHTTPServer
from .provider import (
    API_PATHS,
    SEND_PATHS,
    Template,
)
from .rules import ProviderRules, SentMessage

DEFAULT_HOST = "127.0.0.1"
DEFAULT_APP_ID = "sandbox"
DEFAULT_APP_SECRET = "sandbox-secret"  # noqa: S105 (a fake credential, printed on start)
DEFAULT_BALANCE = 10000
DEFAULT_TEMPLATES = {
    "1001": "【榛子沙箱】您的验证码是{1}，{2}内有效。",
    "1002": "【榛子沙箱】您的订单{1}已发货。",
}


class Sandbox(ProviderRules):
    """A local Zhenzi-compatible server with fake credentials, a balance, reports and faults.

    ``start()`` serves in a daemon thread (or use it as a context manager); ``serve_forever()``
    blocks. An instance serves once. All introspection is thread-safe. ``app_id``,
    ``app_secret``, ``disabled``, ``ip_whitelist``, ``daily_cap``, ``hang_seconds`` and
    ``late_seconds`` are read on every request and may be changed while serving.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str = DEFAULT_APP_SECRET,
        balance: int = DEFAULT_BALANCE,
        callback_url: str | None = None,
        report_delay: float = 1.0,
        report_format: str = "form",
        undeliverable_suffixes: str = "4",
        daily_cap: int = 0,
        ip_whitelist: Iterable[str] = (),
        latency: float = 0.0,
        fault_rates: Mapping[str, float] | None = None,
        hang_seconds: float = 30.0,
        late_seconds: float = 5.0,
        seed: int | None = None,
        templates: Mapping[str, str] | None = None,
        disabled: bool = False,
        report_retry_delay: float = 2.0,
        verbose: bool = False,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
        if not app_id or not app_secret:
            raise ValueError("app_id and app_secret must not be empty")
        if report_format not in REPORT_FORMATS:
            raise ValueError(
                f"report_format must be one of {', '.join(REPORT_FORMATS)}, got {report_format!r}"
            )
        if not isinstance(undeliverable_suffixes, str) or not all(
            character in "0123456789" for character in undeliverable_suffixes
        ):
            raise ValueError(
                f"undeliverable_suffixes must be digits, got {undeliverable_suffixes!r}"
            )
        if isinstance(ip_whitelist, str):
            raise ValueError("ip_whitelist must be a list of addresses, not one string")
        if callback_url is not None and urlsplit(callback_url).scheme not in ("http", "https"):
            raise ValueError(f"callback_url must be an http(s) URL, got {callback_url!r}")
        self.host = host
        self.port = port
        self.app_id = app_id
        self.app_secret = app_secret
        self.callback_url = callback_url
        self.report_delay = check_non_negative("report_delay", report_delay)
        self.report_format = report_format
        self.undeliverable_suffixes = undeliverable_suffixes
        self.daily_cap = check_non_negative_int("daily_cap", daily_cap)
        self.ip_whitelist = frozenset(str(ipaddress.ip_address(ip)) for ip in ip_whitelist)
        self.hang_seconds = check_non_negative("hang_seconds", hang_seconds)
        self.late_seconds = late_seconds
        self.disabled = disabled
        self.verbose = verbose
        self.templates = {
            str(template_id): Template.parse(text)
            for template_id, text in (DEFAULT_TEMPLATES if templates is None else templates).items()
        }
        self._initial_balance = check_non_negative_int("balance", balance)
        self._lock = threading.Lock()
        self._balance = self._initial_balance
        self._faults = FaultPlan(latency, fault_rates or {}, seed)
        self._messages: list[SentMessage] = []
        self._accepted: dict[str, SentMessage] = {}
        self._request_counts: dict[str, int] = {}
        self._repeat_counts: dict[str, int] = {}
        self._daily_counts: dict[tuple[str, str], int] = {}
        self._requests_total = 0
        self._requests_by_endpoint = dict.fromkeys(API_PATHS, 0)
        self._dispatcher = (
            ReportDispatcher(
                self._lock,
                callback_url,
                report_format,
                check_non_negative("report_retry_delay", report_retry_delay),
            )
            if callback_url
            else None
        )
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._lifecycle_lock = threading.Lock()
        self._opened = False
        self._http_server: SandboxHTTPServer | None = None
        self._serving_thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self."""
        server = self._open()
        threading.Thread(
            target=self._serve, args=(server,), name="zhenzi-sandbox", daemon=True
        ).start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve on this thread until ``stop()`` or Ctrl-C."""
        self._serve(self._open())

    def stop(self) -> None:
        """Stop serving and close every connection now, hung ones included. Idempotent."""
        server = self._http_server
        if server is None or self._closed.is_set():
            return
        self._stopping.set()
        server.stop_serving()
        if threading.current_thread() is not self._serving_thread:
            self._closed.wait()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _open(self) -> SandboxHTTPServer:
        with self._lifecycle_lock:
            if self._opened:
                raise RuntimeError("this Sandbox was already started; create a new one")
            self._opened = True
        self._http_server = SandboxHTTPServer((self.host, self.port), self)
        if self._dispatcher is not None:
            self._dispatcher.start()
        return self._http_server

    def _serve(self, server: SandboxHTTPServer) -> None:
        self._serving_thread = threading.current_thread()
        try:
            server.serve_until_stopped()
        finally:
            self._stopping.set()  # releases requests held by latency or a "timeout" fault
            server.close_connections()
            server.server_close()
            if self._dispatcher is not None:
                self._dispatcher.stop()
            self._closed.set()

    @property
    def http_server(self) -> SandboxHTTPServer | None:
        """The underlying HTTP server, None until started."""
        return self._http_server

    @property
    def url(self) -> str:
        """The base URL, with the port actually bound."""
        if self._http_server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._http_server.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # Faults

    @property
    def late_seconds(self) -> float:
        """Seconds from a "late" request's arrival to the record of its message."""
        return self._late_seconds

    @late_seconds.setter
    def late_seconds(self, value: float) -> None:
        self._late_seconds = check_non_negative("late_seconds", value)

    def set_faults(
        self, latency: float | None = None, rates: Mapping[str, float] | None = None
    ) -> None:
        """Change the latency and/or replace the fault rates; None leaves a setting unchanged."""
        new_latency = None if latency is None else check_non_negative("latency", latency)
        new_rates = None if rates is None else check_fault_rates(rates)
        with self._lock:
            if new_latency is not None:
                self._faults.latency = new_latency
            if new_rates is not None:
                self._faults.rates = new_rates

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Give the next ``count`` API requests the fault ``kind``, ahead of the rates."""
        check_fault_kind(kind)
        check_fault_count(count)
        with self._lock:
            self._faults.queue(kind, count)

    @property
    def faults(self) -> dict[str, Any]:
        """Current latency, rates and queued one-shot faults."""
        with self._lock:
            return self._faults.as_dict()

    # Request processing (called by the HTTP handler)

    def answer(
        self, path: str, fields: Mapping[str, str], peer: str
    ) -> tuple[str | None, dict[str, Any] | None]:
        """Count an API request, pick its fault and process it unless the fault forbids.

        Returns (fault kind or None, the JSON answer or None when the request went unprocessed).
        """
        latency = self._faults.latency  # reading one attribute is atomic: no lock needed
        if latency:
            self._stopping.wait(latency)
        message_id = fields.get("messageId", "")
        with self._lock:
            self._requests_total += 1
            self._requests_by_endpoint[path] += 1
            if message_id and path in SEND_PATHS:
                self._request_counts[message_id] = self._request_counts.get(message_id, 0) + 1
            fault = self._faults.pick()
            if fault in UNPROCESSED_FAULTS:
                return fault, None
            record_after = self._late_seconds if fault == "late" else 0.0
            return fault, self._process(path, fields, peer, record_after)

    def hang(self) -> None:
        """Hold a "timeout" or "late" request for ``hang_seconds``, or until the sandbox stops."""
        self._stopping.wait(self.hang_seconds)

    # Introspection

    @property
    def balance(self) -> int:
        with self._lock:
            return self._balance

    @balance.setter
    def balance(self, value: int) -> None:
        value = check_non_negative_int("balance", value)
        with self._lock:
            self._balance = value

    @property
    def requests_total(self) -> int:
        """API requests received (any outcome, faults included)."""
        with self._lock:
            return self._requests_total

    @property
    def requests_by_endpoint(self) -> dict[str, int]:
        """API requests received per path."""
        with self._lock:
            return dict(self._requests_by_endpoint)

    def request_count(self, message_id: str) -> int:
        """How many send requests carried ``message_id`` (any outcome)."""
        with self._lock:
            return self._request_counts.get(message_id, 0)

    def repeat_count(self, message_id: str) -> int:
        """How many send requests carrying ``message_id`` the sandbox processed and refused
        because that messageId was already taken (``messageId重复``). Each is a second copy of
        the message that a provider without that check would have delivered."""
        with self._lock:
            return self._repeat_counts.get(message_id, 0)

    def accepted_count(self, message_id: str) -> int:
        """1 if a message with ``message_id`` was accepted and recorded, else 0 (a "late" one
        counts once its ``late_seconds`` have passed)."""
        now = time.monotonic()
        with self._lock:
            sent = self._accepted.get(message_id)
            return int(sent is not None and sent.recorded(now))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Copies of every accepted and recorded message, in the order they were accepted."""
        now = time.monotonic()
        with self._lock:
            return [sent.as_dict(now) for sent in self._messages if sent.recorded(now)]

    def message(self, message_id: str) -> dict[str, Any] | None:
        """A copy of the accepted and recorded message with ``message_id``, or None."""
        now = time.monotonic()
        with self._lock:
            sent = self._accepted.get(message_id)
            return None if sent is None or not sent.recorded(now) else sent.as_dict(now)

    @property
    def reports(self) -> list[dict[str, Any]]:
        """Report delivery attempts: messageId, status, url, attempt, ok, http_status, error."""
        if self._dispatcher is None:
            return []
        with self._lock:
            return [dict(attempt) for attempt in self._dispatcher.attempts]

    def wait_for_reports(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` reports were delivered successfully; False on timeout."""
        if self._dispatcher is None:
            return count <= 0
        return self._dispatcher.wait_for_deliveries(count, timeout)

    def counts(self) -> dict[str, Any]:
        """Per messageId: requests, repeats refused (``repeat_count``) and the accepted
        (recorded) messageIds, for bulk checks."""
        now = time.monotonic()
        with self._lock:
            return {
                "request_counts": dict(self._request_counts),
                "repeat_counts": dict(self._repeat_counts),
                "accepted": [
                    message_id for message_id, sent in self._accepted.items() if sent.recorded(now)
                ],
            }

    def state(self) -> dict[str, Any]:
        """A summary: balance, request totals, faults, message and report counts.

        ``message_count`` counts recorded messages, ``late_pending`` the "late" ones not yet
        recorded.
        """
        now = time.monotonic()
        with self._lock:
            dispatcher = self._dispatcher
            pending = sum(1 for sent in self._messages if not sent.recorded(now))
            return {
                "balance": self._balance,
                "requests_total": self._requests_total,
                "requests_by_endpoint": dict(self._requests_by_endpoint),
                "faults": self._faults.as_dict(),
                "message_count": len(self._messages) - pending,
                "late_pending": pending,
                "report_count": len(dispatcher.attempts) if dispatcher else 0,
                "reports_delivered": dispatcher.delivered if dispatcher else 0,
            }

    def reset(self) -> None:
        """Forget messages, counters, reports and faults; restore the starting balance."""
        with self._lock:
            self._balance = self._initial_balance
            self._messages.clear()
            self._accepted.clear()
            self._request_counts.clear()
            self._repeat_counts.clear()
            self._daily_counts.clear()
            self._requests_total = 0
            self._requests_by_endpoint = dict.fromkeys(API_PATHS, 0)
            self._faults.clear()
            if self._dispatcher is not None:
                self._dispatcher.clear()
