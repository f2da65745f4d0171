"""The sandbox's HTTP side: a threading server and a keep-alive request handler.

The handler reads the request, asks the ``Sandbox`` for the answer and writes it, or plays the
fault the sandbox picked: hang then close ("timeout", and "late", whose message the sandbox records
later), close without answering ("cut"), an HTML 500 ("http500"), an HTML page with status 200
("non_json") or ``{"code": 1000}`` ("code1000").
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .faults import check_fault_count, check_fault_kind, check_non_negative
from .provider import API_PATHS, JSON_CONTENT_TYPE, error

if TYPE_CHECKING:
    from .server import Sandbox

CONTROL_PREFIX = "/_sandbox/"
MAX_BODY_BYTES = 1 << 20
HTML_CONTENT_TYPE = "text/html;charset=UTF-8"
HTML_500 = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
HTML_PAGE = "<html><body><h1>502 Bad Gateway</h1><p>网关错误</p></body></html>".encode()
FAULT_TIMINGS = ("hang_seconds", "late_seconds")


def apply_control(sandbox: Sandbox, action: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Carry out ``POST /_sandbox/<action>`` with its JSON body; ValueError when invalid.

    ``faults`` takes ``latency``, ``rates``, ``next`` and the fault timings ``hang_seconds`` and
    ``late_seconds``; it answers the faults and the timings. Nothing changes unless all is valid.
    """
    if action == "faults":
        unknown = set(data) - {"latency", "rates", "next", *FAULT_TIMINGS}
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
        next_faults = data.get("next") or []
        if not isinstance(next_faults, list):
            raise ValueError(f'"next" must be a list, got {next_faults!r}')
        queued = [_parse_next_fault(entry) for entry in next_faults]
        timings = {
            name: check_non_negative(name, data[name]) for name in FAULT_TIMINGS if name in data
        }
        sandbox.set_faults(latency=data.get("latency"), rates=data.get("rates"))
        for name, value in timings.items():
            setattr(sandbox, name, value)
        for kind, count in queued:
            sandbox.fail_next(kind, count)
        return {**sandbox.faults, **{name: getattr(sandbox, name) for name in FAULT_TIMINGS}}
    if action == "balance":
        sandbox.balance = data.get("balance")
        return {"balance": sandbox.balance}
    if action == "reset":
        sandbox.reset()
        return sandbox.state()
    raise ValueError(f"unknown control action {action!r}")


def _parse_next_fault(entry: Any) -> tuple[str, int]:
    """``"kind"`` or ``["kind", count]`` from the ``next`` list of ``POST /_sandbox/faults``."""
    if isinstance(entry, str):
        kind, count = entry, 1
    elif isinstance(entry, list) and len(entry) in (1, 2):
        kind, count = entry[0], entry[1] if len(entry) == 2 else 1
    else:
        raise ValueError(f'each "next" entry must be "kind" or ["kind", count], got {entry!r}')
    return check_fault_kind(kind), check_fault_count(count)


def parse_form(body: bytes) -> dict[str, str]:
    """Form fields of a request body; the first value wins, like a servlet's getParameter."""
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def _shut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        connection.shutdown(socket.SHUT_RDWR)


class SandboxHTTPServer(ThreadingHTTPServer):
    """A thread per connection; keeps track of open connections so ``stop()`` can end them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        self._stop_requested = False
        self._wakeup_reader, self._wakeup_writer = socket.socketpair()
        self._wakeup_writer.setblocking(False)
        try:
            super().__init__(address, SandboxRequestHandler)
        except BaseException:
            self._close_wakeup()
            raise

    def serve_until_stopped(self) -> None:
        """Accept connections until ``stop_serving()``.

        Unlike socketserver's ``shutdown()``, which waits for the next poll, this stops at once.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wakeup_reader, selectors.EVENT_READ)
            while not self._stop_requested:
                for key, _events in selector.select():
                    if key.fileobj is self and not self._stop_requested:
                        self.handle_request()

    def stop_serving(self) -> None:
        """Make ``serve_until_stopped()`` return (from any thread, without waiting)."""
        self._stop_requested = True
        with contextlib.suppress(OSError):  # already woken, or already closed
            self._wakeup_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._close_wakeup()

    def _close_wakeup(self) -> None:
        self._wakeup_reader.close()
        self._wakeup_writer.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), slow on some hosts.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            if not self._closing:
                self._connections.add(connection)
                return
        _shut(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def open_connections(self) -> list[socket.socket]:
        """The server side of every open client connection."""
        with self._connections_lock:
            return list(self._connections)

    def close_connections(self) -> None:
        """End every open connection, idle keep-alive and hung ones included."""
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away
        super().handle_error(request, client_address)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Routes API and control requests; keep-alive, one write per answer, Nagle off."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path in API_PATHS:
            self._serve_api(path, body)
        elif path.startswith(CONTROL_PREFIX):
            self._serve_control(path[len(CONTROL_PREFIX) :], body)
        else:
            self._send_json(404, {"error": f"no such path: {path}"})

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.sandbox.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a body the sandbox cannot read."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send_json(411, {"error": "send a Content-Length, not chunked"})
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(413 if length > 0 else 400, {"error": "bad Content-Length"})
            return None
        return self.rfile.read(length) if length else b""

    def _serve_api(self, path: str, body: bytes) -> None:
        if self.command != "POST":
            self._send_json(405, {"error": "POST only"}, allow="POST")
            return
        sandbox = self.server.sandbox
        fault, answer = sandbox.answer(path, parse_form(body), self.client_address[0])
        if fault in ("timeout", "late"):
            sandbox.hang()
            self._drop_connection(fault)
        elif fault == "cut":
            self._drop_connection(fault)
        elif fault == "http500":
            self._send(500, HTML_500, HTML_CONTENT_TYPE)
        elif fault == "non_json":
            self._send(200, HTML_PAGE, HTML_CONTENT_TYPE)
        elif fault == "code1000":
            self._send_json(200, error(1000))
        else:
            self._send_json(200, answer)

    def _serve_control(self, action: str, body: bytes) -> None:
        sandbox = self.server.sandbox
        if action in ("state", "counts") or action.startswith("messages/"):
            if self.command not in ("GET", "HEAD"):
                self._send_json(405, {"error": "GET only"}, allow="GET")
            elif action == "state":
                self._send_json(200, sandbox.state())
            elif action == "counts":
                self._send_json(200, sandbox.counts())
            else:
                message_id = unquote(action[len("messages/") :])
                found = sandbox.message(message_id)
                if found is None:
                    self._send_json(404, {"error": f"no accepted message {message_id!r}"})
                else:
                    found["request_count"] = sandbox.request_count(message_id)
                    self._send_json(200, found)
        elif action in ("faults", "balance", "reset"):
            if self.command != "POST":
                self._send_json(405, {"error": "POST only"}, allow="POST")
                return
            try:
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("the body must be a JSON object")
                result = apply_control(sandbox, action, data)
            except ValueError as invalid:
                self._send_json(400, {"error": str(invalid)})
            else:
                self._send_json(200, result)
        else:
            self._send_json(404, {"error": f"no such control path: {CONTROL_PREFIX}{action}"})

    def _send_json(self, status: int, payload: Any, allow: str | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self._send(status, body, JSON_CONTENT_TYPE, allow)

    def _send(self, status: int, body: bytes, content_type: str, allow: str | None = None) -> None:
        """Write the whole answer in one send: with Nagle off, headers never wait for an ACK."""
        head = (
            f"HTTP/1.1 {status} {self.responses[status][0]}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if allow:
            head += f"Allow: {allow}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        head += "\r\n"
        if self.server.sandbox.verbose:  # logged first, so the line is out when the client reads
            self.log_message('"%s %s" %d', self.command, urlsplit(self.path).path, status)
        self.wfile.write(head.encode("latin-1") + (b"" if self.command == "HEAD" else body))

    def _drop_connection(self, fault: str) -> None:
        """Close the connection without an answer: the client sees a remote disconnect."""
        if self.server.sandbox.verbose:
            self.log_message('"%s %s" dropped (%s)', self.command, urlsplit(self.path).path, fault)
        self.close_connection = True
        _shut(self.connection)
