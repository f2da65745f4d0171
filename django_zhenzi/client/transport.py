"""The client's HTTP: form POSTs to one API host over kept-alive HTTP/1.1 connections of its own.
Knows nothing of Django, nor of the API's fields.

Why its own HTTP/1.1: a POST and its answer are the client's one hot path, and what it needs of
the protocol is small (one request form; a status line, headers and a sized, chunked or
close-delimited body back). With 16 threads at 20 ms latency, a ``ZhenziClient.send`` (the form,
the checks and the answer's JSON included) costs 202 µs of CPU over this module against 432 µs
over ``http.client``, whose response object and email-package header parsing were half of it;
``http.client`` alone, with nothing around it, 317 µs; requests as the client used it until 0.9,
757 µs (``benchmarks/bench_transport.py``; figures in benchmarks/README.rst). The rest of the
module: the pool, the timeouts, the proxy (``CONNECT`` tunnel for https) and the CA bundle from
the environment, TLS through the standard ``ssl`` module, and the one distinction the caller
needs: whether a failed request can have reached the provider.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import string
import threading
import urllib.request
import weakref
from base64 import b64encode
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import certifi

#: Errors of the socket, TLS, and of answers that are not HTTP (``http.client``'s exception
#: types); anything else is a bug, not the network.
NETWORK_ERRORS = (OSError, http.client.HTTPException, UnicodeError)

#: Limits on what a server may send: a longer head or answer is an error, not a memory hog.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_ANSWER_BYTES = 16 * 1024 * 1024
RECEIVE_BYTES = 64 * 1024

#: Answers that never have a body (RFC 9112, section 6.3).
BODILESS = frozenset({204, 304})
HEX_DIGITS = frozenset(string.hexdigits.encode())


class TransportFailure(Exception):
    """A request without an answer. ``sent`` is False only when the request cannot have left
    this host (its connection failed: DNS, refused, connect timeout, TLS handshake or
    certificate, the proxy's refusal); the original error is ``error``."""

    def __init__(self, error: BaseException, *, sent: bool) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error
        self.sent = sent


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def environment_proxy(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``)
    gives for ``url``, as curl and requests read it; None for none."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(parts.netloc, proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def environment_ca_bundle() -> str:
    """The CA bundle TLS verification trusts: ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` when
    set, else certifi's (what requests trusted, so a move between versions changes nothing)."""
    named = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return named or certifi.where()


class Connection:
    """One open connection (to the API host, or through the proxy to it): its socket, and what
    was read from it past the last answer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self.buffer = bytearray()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def closed_by_peer(self) -> bool:
        """Whether this idle connection has something to read: the server closed it (or sent
        what no request asked for), so a request written to it could fail after leaving."""
        if self.sock is None or self.buffer:
            return True
        if not hasattr(select, "poll"):  # Windows: select() takes any socket there
            return bool(select.select([self.sock], [], [], 0)[0])
        poller = select.poll()  # not select(): it refuses descriptors above 1023
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def read_answer(self) -> tuple[int, bytes, bool]:
        """The next answer: its status, its body, and whether the connection can carry another
        request. Interim (1xx) answers are skipped."""
        status, version, fields = self._read_head()
        while 100 <= status < 200:
            status, version, fields = self._read_head()
        tokens = {token.strip().lower() for token in fields.get(b"connection", b"").split(b",")}
        reusable = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
        if status in BODILESS:
            return status, b"", reusable
        codings = fields.get(b"transfer-encoding")
        if codings is not None:
            if codings.rsplit(b",", 1)[-1].strip().lower() == b"chunked":
                return status, self._read_chunked(), reusable
            return status, self._read_to_end(), False
        length = fields.get(b"content-length")
        if length is None:
            return status, self._read_to_end(), False
        return status, self._read_exactly(_content_length(length)), reusable

    def _receive(self) -> bool:
        """Read what the socket has into the buffer; False at its end."""
        assert self.sock is not None  # noqa: S101 (a closed connection is never read)
        chunk = self.sock.recv(RECEIVE_BYTES)
        self.buffer += chunk
        return bool(chunk)

    def _read_head(self) -> tuple[int, bytes, dict[bytes, bytes]]:
        """A status line and its headers: (status, version, lower-cased name -> value, the
        values of a repeated header joined by commas)."""
        searched = 0
        while True:
            end = self.buffer.find(b"\n\r\n", searched)
            bare = self.buffer.find(b"\n\n", searched)
            if end < 0 or 0 <= bare < end:
                end, skip = bare, 2
            else:
                skip = 3
            if end >= 0:
                break
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise http.client.LineTooLong("the answer's status line and headers")
            searched = max(len(self.buffer) - 2, 0)
            if not self._receive():
                if self.buffer:
                    raise http.client.IncompleteRead(bytes(self.buffer))
                raise http.client.RemoteDisconnected(
                    "Remote end closed connection without response"
                )
        lines = bytes(self.buffer[: end + 1]).splitlines()
        del self.buffer[: end + skip]
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/") or not (code.isdigit() and rest[3:4] in (b"", b" ")):
            raise http.client.BadStatusLine(repr(lines[0][:100]))
        if len(lines) > MAX_HEADERS + 1:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        fields: dict[bytes, bytes] = {}
        name = b""
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and name:  # an obsolete folded continuation
                fields[name] += b" " + line.strip()
                continue
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            fields[name] = fields[name] + b", " + value if name in fields else value
        return int(code), version, fields

    def _read_line(self) -> bytes:
        """One line of a chunked body (a size, or a trailer), without its line ending."""
        searched = 0
        while (end := self.buffer.find(b"\n", searched)) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise http.client.LineTooLong("a chunked body's line")
            searched = len(self.buffer)
            if not self._receive():
                raise http.client.IncompleteRead(bytes(self.buffer))
        line = bytes(self.buffer[:end]).rstrip(b"\r")
        del self.buffer[: end + 1]
        return line

    def _read_exactly(self, size: int) -> bytes:
        if size > MAX_ANSWER_BYTES:
            raise http.client.HTTPException(f"an answer of {size} bytes is too large")
        while len(self.buffer) < size:
            if not self._receive():
                raise http.client.IncompleteRead(bytes(self.buffer), size - len(self.buffer))
        body = bytes(self.buffer[:size])
        del self.buffer[:size]
        return body

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            if not size_text or not HEX_DIGITS.issuperset(size_text):
                raise http.client.HTTPException(f"a bad chunk size: {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > MAX_ANSWER_BYTES:
                raise http.client.HTTPException("a chunked answer is too large")
            body += self._read_exactly(size)
            if self._read_line():
                raise http.client.HTTPException("a chunk longer than its size")
        while self._read_line():  # trailers, up to the empty line
            pass
        return bytes(body)

    def _read_to_end(self) -> bytes:
        while self._receive():
            if len(self.buffer) > MAX_ANSWER_BYTES:
                raise http.client.HTTPException("an answer is too large")
        body = bytes(self.buffer)
        self.close()
        return body


def _content_length(value: bytes) -> int:
    """A Content-Length value; the same number repeated is one, anything else an error."""
    lengths = {part.strip() for part in value.split(b",")}
    if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
        raise http.client.HTTPException(f"a bad Content-Length: {value[:40]!r}")
    return int(length)


class Transport:
    """POSTs to the host of ``base_url`` (paths are appended to its own), shared by threads:
    each request takes a kept-alive connection, or opens one, and gives it back after a full
    answer. ``timeout`` is seconds, or (connect, read) seconds. Nothing is retried, no redirect
    followed. The proxy and the CA bundle come from the environment, read once, here."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        timeout: float | tuple[float, float] = 10.0,
        pool_size: int = 10,
    ) -> None:
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.connect_timeout, self.read_timeout = _seconds(connect), _seconds(read)
        self.pool_size = pool_size
        self.proxy = environment_proxy(base_url)
        self.ca_bundle = environment_ca_bundle()
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        # A worker thread's transport goes with the thread: its kept connections close then.
        weakref.finalize(self, _close_all, self._idle)
        self._context: ssl.SSLContext | None = None
        self._head = b""
        self.unusable = ""  # why no request can be made; said by each request's failure
        parts = urlsplit(base_url)
        try:
            self._host, self._port = parts.hostname, parts.port
        except ValueError as error:  # a port out of range, or not a number
            self._host, self.unusable = None, str(error)
        if parts.scheme not in ("http", "https") or not self._host:
            self.unusable = self.unusable or f"not an absolute http(s) URL: {base_url!r}"
            return
        self._tls = parts.scheme == "https"
        self._port = self._port or (443 if self._tls else 80)
        try:
            self._authority = _authority(self._host, self._port, 443 if self._tls else 80)
        except UnicodeError as error:
            self.unusable = f"not a host name: {self._host!r} ({error})"
            return
        headers = {"Host": self._authority, "Accept-Encoding": "identity", **headers}
        # Through a proxy, plain http asks it for the absolute URL; https tunnels through it.
        self._prefix = parts.path.rstrip("/")
        if self.proxy is not None:
            self._use_proxy(self.proxy)
            if self.unusable:
                return
            if not self._tls:
                self._prefix = f"http://{self._authority}{self._prefix}"
                headers.update(self._proxy_headers)
        if not _is_request_target(self._prefix or "/"):
            self.unusable = f"not a URL path that can be sent as is: {parts.path!r}"
        self._head = _header_lines(headers)

    def _use_proxy(self, proxy: str) -> None:
        parts = urlsplit(proxy)
        if parts.scheme != "http" or not parts.hostname:
            self.unusable = f"only an http:// proxy can be used, not {parts.scheme}://"
            return
        self._proxy_address = (parts.hostname, parts.port or 80)
        self._proxy_headers = {}
        if parts.username:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._proxy_headers["Proxy-Authorization"] = f"Basic {b64encode(pair).decode()}"

    def post(self, path: str, body: bytes) -> Reply:
        """POST ``body`` to ``path``; the full answer, or TransportFailure."""
        connection = self._take()
        request = b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (
            (self._prefix + path).encode("ascii"),
            self._head,
            len(body),
            body,
        )
        try:
            assert connection.sock is not None  # noqa: S101 (_take gives open ones)
            connection.sock.sendall(request)
            status, content, reusable = connection.read_answer()
        except NETWORK_ERRORS as error:
            connection.close()
            raise TransportFailure(error, sent=True) from None
        if reusable:
            self._give_back(connection)
        else:
            connection.close()
        return Reply(status, content)

    def close(self) -> None:
        """Close the idle connections (a later request opens a new one)."""
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()
        _close_all(idle)

    def _take(self) -> Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect()
            if not connection.closed_by_peer():
                return connection
            connection.close()

    def _give_back(self, connection: Connection) -> None:
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> Connection:
        """A new connection, connected (through the proxy's tunnel, TLS verified): whatever
        fails here fails before a byte of the request is written."""
        if self.unusable:
            raise TransportFailure(ValueError(self.unusable), sent=False)
        address = self._proxy_address if self.proxy else (self._host, self._port)
        try:
            sock = socket.create_connection(address, timeout=self.connect_timeout)
        except NETWORK_ERRORS as error:
            raise TransportFailure(error, sent=False) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls:
                if self.proxy:
                    self._open_tunnel(sock)
                sock = self._tls_context().wrap_socket(sock, server_hostname=self._host)
        except NETWORK_ERRORS as error:
            sock.close()
            raise TransportFailure(error, sent=False) from None
        except BaseException:
            sock.close()
            raise
        sock.settimeout(self.read_timeout)
        return Connection(sock)

    def _open_tunnel(self, sock: socket.socket) -> None:
        """Ask the proxy for a tunnel to the API host; refused, nothing of the request left."""
        request = f"CONNECT {self._authority} HTTP/1.1\r\n".encode("ascii") + _header_lines(
            {"Host": self._authority, **self._proxy_headers}
        )
        sock.sendall(request + b"\r\n")
        status, _, _ = Connection(sock)._read_head()
        if status != 200:
            raise OSError(f"Tunnel connection failed: {status}")

    def _tls_context(self) -> ssl.SSLContext:
        """Made at the first connection, so a CA bundle that cannot be read fails a request
        (as not sent), not the construction of a client."""
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self.ca_bundle)
        return self._context


def _authority(host: str, port: int, default_port: int) -> str:
    """``host[:port]`` as the Host header and ``CONNECT`` name it (IDNA, IPv6 in brackets)."""
    name = f"[{host}]" if ":" in host else host.encode("idna").decode("ascii")
    return name if port == default_port else f"{name}:{port}"


def _is_request_target(target: str) -> bool:
    return target.isascii() and all(" " < character < "\x7f" for character in target)


def _header_lines(headers: dict[str, str]) -> bytes:
    """``Name: value`` lines; a line break or NUL in one would split the request: refused."""
    lines = []
    for name, value in headers.items():
        if not name.isascii() or any(c in f"{name}{value}" for c in "\r\n\0") or ":" in name:
            raise ValueError(f"Not a header that can be sent: {name!r}")
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    return b"".join(lines)


def _close_all(connections: list[Connection]) -> None:
    for connection in connections:
        connection.close()


def _seconds(timeout: object) -> float:
    """A timeout as seconds, refused here rather than deep in the socket module."""
    try:
        seconds = float(timeout)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0 or isinstance(timeout, bool):
        raise ValueError(f"A timeout must be a number of seconds above 0, not {timeout!r}")
    return seconds
