"""Fixtures of these tests."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)
