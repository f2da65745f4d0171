"""The services' clock: every moment the services store or compare comes from ``now()``.

Tests and simulations stop it instead of waiting for retry times::

    with clock.stopped() as stopped:
        stopped.move(seconds=61)  # every thread of the process now sees a minute later

One clock for the whole process on purpose: a test's worker threads must see the moment the
test set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone


class StoppedClock:
    """A clock that only moves when told: ``move(seconds)``, ``at(seconds)`` (from ``start``),
    or setting ``moment``."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.moment = start

    def move(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)

    def at(self, seconds: float) -> None:
        self.moment = self.start + timedelta(seconds=seconds)


_stopped: StoppedClock | None = None


def now() -> datetime:
    return timezone.now() if _stopped is None else _stopped.moment


@contextmanager
def stopped(at: datetime | None = None) -> Iterator[StoppedClock]:
    """Stop the clock at ``at`` (default: now) until the block ends."""
    global _stopped
    previous = _stopped
    _stopped = StoppedClock(now() if at is None else at)
    try:
        yield _stopped
    finally:
        _stopped = previous
