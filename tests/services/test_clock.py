"""The services' clock seam: stopped for a block, seen by every thread, restored after."""

from __future__ import annotations

import threading
from datetime import timedelta

from django.utils import timezone

from django_zhenzi.services import clock


def test_a_stopped_clock_moves_only_when_told_and_every_thread_sees_it():
    with clock.stopped() as stopped:
        first = clock.now()
        assert clock.now() == first == stopped.start
        stopped.move(61)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(clock.now()))
        thread.start()
        thread.join()
        assert seen == [first + timedelta(seconds=61)]
        stopped.at(5)
        assert clock.now() == first + timedelta(seconds=5)


def test_the_clock_runs_again_after_the_block_and_nested_blocks_restore_the_outer_one():
    outer_start = timezone.now() - timedelta(days=1)
    with clock.stopped(outer_start):
        with clock.stopped(outer_start + timedelta(hours=1)) as inner:
            assert clock.now() == inner.moment
        assert clock.now() == outer_start
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=5)
