"""Fixtures of these tests."""

from __future__ import annotations

import pytest

from tests.verification.codes import CODE_MESSAGE, LOCMEM


@pytest.fixture
def codes(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE}


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``committed(function, ...)`` calls it and runs the on-commit callbacks it registered, as
    a real commit would (each test runs in a transaction that never commits)."""

    def call(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return call


@pytest.fixture
def sandboxed_codes(sandbox, settings):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "API_URL": sandbox.url,
        "CODE_MESSAGE": CODE_MESSAGE,
        "RECONCILE_DELAY": 10,
    }
    return sandbox
