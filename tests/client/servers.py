"""Test servers for the client tests: a recorder of raw requests (``Recorder`` and its
``recorder`` fixture, also used by other test packages), and the test account."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

APP_ID = "test-app"


APP_SECRET = "test-secret-value"


class Recorder:
    """An HTTP server that records each request and answers with a set status and body."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.body: bytes = b'{"code":0,"data":"\xe5\x8f\x91\xe9\x80\x81\xe6\x88\x90\xe5\x8a\x9f"}'
        self.headers: dict[str, str] = {}
        #: Close each connection after its answer without saying so (a keep-alive timeout).
        self.hang_up = False
        self.hung_up = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                recorder.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                self.send_response(recorder.status)
                for name, value in recorder.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(recorder.body)))
                self.end_headers()
                self.wfile.write(recorder.body)
                self.close_connection = self.close_connection or recorder.hang_up

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def shutdown_request(self, request: socket.socket) -> None:
                super().shutdown_request(request)
                recorder.hung_up.set()

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def answer(self, body: bytes | dict, status: int = 200, **headers: str) -> None:
        self.body = json.dumps(body).encode() if isinstance(body, dict) else body
        self.status = status
        self.headers = headers

    def form(self, index: int = -1) -> dict[str, str]:
        fields = parse_qs(self.requests[index]["body"].decode("utf-8"), keep_blank_values=True)
        return {name: values[0] for name, values in fields.items()}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RawServer:
    """A TCP server that answers each request with the next of ``answers``: raw bytes, written
    as given (a list of pieces is written piece by piece), then the connection closed if the
    answer says so. It counts connections and records each request's head."""

    def __init__(self, answers: list[tuple[bytes | list[bytes], bool]]) -> None:
        self.answers = list(answers)
        self.heads: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            while self.answers:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                self.heads.append(head)
                length = re.search(rb"Content-Length: (\d+)", head)
                reader.read(int(length.group(1)) if length else 0)
                answer, close = self.answers.pop(0)
                for piece in [answer] if isinstance(answer, bytes) else answer:
                    connection.sendall(piece)
                    time.sleep(0.01)
                if close:
                    return

    def close(self) -> None:
        self.listener.close()
