"""The client's HTTP: form POSTs to one API host over kept-alive connections of the standard
library's ``http.client``. Knows nothing of Django, nor of the API's fields.

Why not requests (the transport until 0.9): with 16 threads at 20 ms latency a POST cost 940 µs
of CPU through requests as the client used it, 662 µs through urllib3's pool directly, and 432 µs
through this module, against 381 µs for ``http.client`` alone (``benchmarks/bench_transport.py``,
one run; figures in benchmarks/README.rst). The protocol itself (status line,
headers, chunked or sized bodies, ``Connection: close``, the proxy's ``CONNECT``) stays the
standard library's; this module adds the pool, the timeouts, the proxy and CA bundle from the
environment, and the one distinction the caller needs: whether a failed request can have reached
the provider.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import threading
import urllib.request
import weakref
from base64 import b64encode
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import certifi

#: Errors of ``http.client`` and the socket beneath it: anything else is a bug, not the network.
NETWORK_ERRORS = (OSError, http.client.HTTPException, UnicodeError)


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
        self._headers = dict(headers)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        # A worker thread's transport goes with the thread: its kept connections close then.
        weakref.finalize(self, _close_all, self._idle)
        self._context: ssl.SSLContext | None = None
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
        # Through a proxy, plain http asks it for the absolute URL; https tunnels through it.
        self._prefix = parts.path.rstrip("/")
        if self.proxy is not None:
            self._use_proxy(self.proxy)
            if not self._tls:
                self._prefix = f"http://{parts.netloc}{self._prefix}"

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
        if not self._tls:
            self._headers.update(self._proxy_headers)

    def post(self, path: str, body: bytes) -> Reply:
        """POST ``body`` to ``path``; the full answer, or TransportFailure."""
        connection = self._take()
        try:
            connection.request("POST", self._prefix + path, body, self._headers)
            response = connection.getresponse()
            content = response.read()
        except NETWORK_ERRORS as error:
            connection.close()
            raise TransportFailure(error, sent=True) from None
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        return Reply(response.status, content)

    def close(self) -> None:
        """Close the idle connections (a later request opens a new one)."""
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()
        _close_all(idle)

    def _take(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect()
            if not _closed_by_peer(connection):
                return connection
            connection.close()

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        """A new connection, connected (through the proxy's tunnel, TLS verified): whatever
        fails here fails before a byte of the request is written."""
        if self.unusable:
            raise TransportFailure(ValueError(self.unusable), sent=False)
        host, port = self._proxy_address if self.proxy else (self._host, self._port)
        if self._tls:
            connection = http.client.HTTPSConnection(
                host, port, timeout=self.connect_timeout, context=self._tls_context()
            )
            if self.proxy:
                connection.set_tunnel(self._host, self._port, headers=self._proxy_headers)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        try:
            connection.connect()
        except NETWORK_ERRORS as error:
            connection.close()
            raise TransportFailure(error, sent=False) from None
        connection.sock.settimeout(self.read_timeout)
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        """Made at the first connection, so a CA bundle that cannot be read fails a request
        (as not sent), not the construction of a client."""
        if self._context is None:
            try:
                self._context = ssl.create_default_context(cafile=self.ca_bundle)
            except OSError as error:
                raise TransportFailure(error, sent=False) from None
        return self._context


def _close_all(connections: list[http.client.HTTPConnection]) -> None:
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


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection has something to read: the server closed it (or sent what no
    request asked for), so a request written to it could fail after leaving."""
    if connection.sock is None:
        return True
    if not hasattr(select, "poll"):  # Windows: select() takes any socket there
        return bool(select.select([connection.sock], [], [], 0)[0])
    poller = select.poll()  # not select(): it refuses descriptors above 1023
    poller.register(connection.sock, select.POLLIN)
    return bool(poller.poll(0))
