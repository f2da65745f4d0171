"""Fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import translation

from django_zhenzi.sandbox import Sandbox


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the settings' language: a request in Chinese leaves zh-hans active
    in the thread (LocaleMiddleware activates it and never deactivates it)."""
    yield
    translation.deactivate()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox serving the credentials of tests/settings.py; stopped after the test."""
    with Sandbox(port=0, app_id="test-app", app_secret="test-secret-value") as running:
        yield running
