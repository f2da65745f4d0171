"""Fixtures of these tests."""

from __future__ import annotations

import pytest

from django_zhenzi.sandbox import Sandbox


@pytest.fixture
def zhenzi(sandbox: Sandbox, settings) -> Sandbox:
    """The sandbox, with the app pointed at it."""
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox
