"""TLS stays on, and the app secret stays secret."""

from __future__ import annotations

import http.client
import logging
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from django_zhenzi.client import (
    ZhenziClient,
    ZhenziError,
    ZhenziNotSentError,
)
from django_zhenzi.client.transport import TransportFailure
from tests.client.servers import (
    APP_ID,
    APP_SECRET,
    Recorder,
    free_port,
)

# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = Recorder()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    server.thread.start()
    yield server.url.replace("http://", "https://")
    server.server.shutdown()
    server.server.server_close()


def test_tls_certificates_are_verified(self_signed_server):
    with ZhenziClient(self_signed_server, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.balance()
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


# --- The secret stays secret ---------------------------------------------------------------------


def every_error(sandbox, recorder) -> Iterator[ZhenziError]:
    def attempt(client: ZhenziClient, call) -> ZhenziError:
        try:
            call(client)
        except ZhenziError as error:
            return error
        raise AssertionError("no error raised")

    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=0.3) as client:
        for kind in ("timeout", "http500", "non_json", "code1000", "cut"):
            sandbox.fail_next(kind)
            yield attempt(client, lambda c: c.send("13800138000", "【测试】x"))
        yield attempt(client, lambda c: c.send("1", "x"))
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET + "-wrong") as client:
        yield attempt(client, lambda c: c.balance())
    with ZhenziClient(f"http://127.0.0.1:{free_port()}", APP_ID, APP_SECRET) as client:
        yield attempt(client, lambda c: c.balance())
    recorder.answer(f"<html>echo appSecret={APP_SECRET}</html>".encode(), status=502)
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        yield attempt(client, lambda c: c.balance())
    recorder.answer({"code": 1000, "data": f"bad secret {APP_SECRET}"})
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        yield attempt(client, lambda c: c.balance())


def test_secret_never_in_errors_reprs_or_logs(sandbox, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    errors = list(every_error(sandbox, recorder))

    assert len(errors) == 10
    client = ZhenziClient(sandbox.url, APP_ID, APP_SECRET)
    texts = [repr(client), str(vars(client)), str(vars(client.transport))]
    client.close()
    for error in errors:
        texts += [str(error), repr(error), str(vars(error))]
        for cause in (error.__cause__, error.__context__):
            texts += [str(cause), repr(cause), str(vars(cause))] if cause else []
            if isinstance(cause, (OSError, http.client.HTTPException, TransportFailure)):
                # The frames that held the request body are forgotten.
                assert cause.__traceback__ is None
    texts += [record.getMessage() for record in caplog.records]
    assert any("POST /sms/send.do" in text for text in texts)
    assert not [text for text in texts if APP_SECRET in text]


def test_client_module_imports_no_django():
    code = (
        "import sys, django_zhenzi.client; "
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.strip() == "[]"


def test_proxies_and_ca_bundle_come_from_the_environment_once(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    with ZhenziClient("https://sms.zhenzikj.com", APP_ID, APP_SECRET) as client:
        monkeypatch.delenv("HTTPS_PROXY")
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
        assert client.transport.proxy == "http://proxy.example:3128"
        assert client.transport.ca_bundle == str(bundle)


def test_no_proxy_from_the_environment_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    with ZhenziClient("http://127.0.0.1:8086", APP_ID, APP_SECRET) as client:
        assert client.transport.proxy is None
        assert client.transport.ca_bundle == certifi.where()


def test_plain_http_goes_to_the_proxy_with_the_absolute_url(monkeypatch, recorder):
    monkeypatch.setenv("HTTP_PROXY", recorder.url.replace("http://", "http://squid:p%40ss@"))
    monkeypatch.setenv("NO_PROXY", "")
    recorder.answer({"code": 0, "data": 42})

    with ZhenziClient("http://sms.example.invalid/base/", APP_ID, APP_SECRET) as client:
        assert client.balance() == 42

    request = recorder.requests[0]
    assert request["path"] == "http://sms.example.invalid/base/account/balance.do"
    assert request["headers"]["Proxy-Authorization"] == "Basic c3F1aWQ6cEBzcw=="  # squid:p@ss


def test_a_proxy_that_refuses_the_tunnel_means_not_sent(monkeypatch, recorder):
    monkeypatch.setenv("HTTPS_PROXY", recorder.url)  # it answers CONNECT with 501
    monkeypatch.setenv("NO_PROXY", "")

    with ZhenziClient("https://sms.example.invalid", APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.send("13800138000", "【测试】通知")

    assert "Tunnel connection failed: 501" in str(caught.value)
    assert recorder.requests == []


def test_a_tls_handshake_that_fails_means_not_sent(recorder):
    https_to_plain_http = recorder.url.replace("http://", "https://")
    with ZhenziClient(https_to_plain_http, APP_ID, APP_SECRET, timeout=5) as client:
        with pytest.raises(ZhenziNotSentError) as caught:
            client.send("13800138000", "【测试】通知")

    assert isinstance(caught.value.__cause__, ssl.SSLError)
    assert recorder.requests == []
