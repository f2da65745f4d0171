"""Fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_zhenzi.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox serving the credentials of tests/settings.py; stopped after the test."""
    with Sandbox(port=0, app_id="test-app", app_secret="test-secret-value") as running:
        yield running
