"""The services' clock: every moment the services store or compare comes from ``now()``.

Tests move it with ``monkeypatch.setattr(clock, "now", ...)`` instead of waiting.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
