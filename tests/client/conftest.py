"""Fixtures of the client tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_zhenzi.client import (
    ZhenziClient,
)
from tests.client.servers import APP_ID, APP_SECRET, recorder  # noqa: F401 (a fixture)


@pytest.fixture
def client(sandbox) -> Iterator[ZhenziClient]:
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=2) as zhenzi:
        yield zhenzi
