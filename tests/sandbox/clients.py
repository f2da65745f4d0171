"""Calling the sandbox in tests: as the official client posts, raw requests, a report receiver."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import timedelta, timezone
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django_zhenzi.sandbox import Sandbox

#: Every test here starts a sandbox server or a process: the full suite only.


APP_ID = "test-app"


APP_SECRET = "test-secret-value"


CREDENTIALS = {"appId": APP_ID, "appSecret": APP_SECRET}


SEND = "/sms/send.do"


TEMPLATE_SEND = "/sms/v2/send.do"


BALANCE = "/account/balance.do"


FIND = "/smslog/findSmsByMessageId.do"


API_PATHS = (SEND, TEMPLATE_SEND, BALANCE, FIND)


TEXT = "【测试】您的验证码是4821，5分钟内有效。"


CHINA = timezone(timedelta(hours=8))


REPORT_FIELDS = {"messageId", "toNumber", "status", "errorCode", "reportTime", "appName"}


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def official_post(url: str, fields: dict[str, str]) -> Any:
    """POST the way the provider's official Python client does, and decode the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 (a local http:// URL)
        url,
        data=urlencode(fields).encode("utf-8"),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    with NO_PROXY.open(request, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
        return json.loads(response.read().decode("utf-8"))


class Receiver:
    """A callback endpoint recording every POST; answers 500 to the first ``fail_first`` ones."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.headers["Content-Type"], body))
                failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/zhenzi/callback/token/"

    def reports(self) -> list[dict[str, str]]:
        """Every received report, decoded from its format."""
        decoded = []
        for content_type, body in self.received:
            if content_type.startswith("application/x-www-form-urlencoded"):
                fields = parse_qs(body.decode("ascii"), strict_parsing=True)
                decoded.append({name: values[0] for name, values in fields.items()})
            else:
                payload = json.loads(body.decode("utf-8"))
                decoded.extend(payload if isinstance(payload, list) else [payload])
        return decoded


def address(sandbox: Sandbox) -> tuple[str, int]:
    parts = urlsplit(sandbox.url)
    return parts.hostname, parts.port


def raw_request(sandbox: Sandbox, method: str, path: str, body: bytes = b"", **headers: str):
    """One request on a fresh http.client connection: (status, headers, body)."""
    connection = HTTPConnection(*address(sandbox), timeout=5)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()
