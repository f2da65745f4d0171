"""Fixtures of the admin tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def zhenzi(settings, sandbox):
    """The app pointed at the sandbox; delivery reports are due at once."""
    sandbox.report_delay = 0
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox
