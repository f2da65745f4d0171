"""Fixtures of these tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from django_zhenzi.sandbox import Sandbox
from tests.sandbox.clients import APP_ID, APP_SECRET, CREDENTIALS, Receiver


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        opened.trust_env = False
        yield opened


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with the test credentials and any other options; all stopped afterwards."""
    started: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        sandbox = Sandbox(port=0, app_id=APP_ID, app_secret=APP_SECRET, **options).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def call(session: requests.Session) -> Callable[..., Any]:
    """POST form fields to an API path (credentials included unless given) and decode the JSON."""

    def call(sandbox: Sandbox, path: str, **fields: str) -> Any:
        response = session.post(sandbox.url + path, data={**CREDENTIALS, **fields}, timeout=5)
        assert response.status_code == 200
        return response.json()

    return call


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    receivers: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        receiver = Receiver(fail_first)
        receiver.thread.start()
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.server.shutdown()
        receiver.server.server_close()
