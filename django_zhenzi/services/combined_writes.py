"""Delivery reports of concurrent requests, written together.

A provider that reports one message per request sends many small requests at once, and a report
written alone costs a transaction of its own: its round trips to the database made most of a
callback request's cost. Here the reports of the requests that arrive while another thread of the
same process is writing wait for that write to end; then one of them writes every report waiting
so far in one transaction (``apply_reports``: one locked SELECT, one INSERT, one UPDATE per
reported status). The more requests arrive at once, the more each write carries; a request that
finds no write going on writes at once, with no wait and no hand-off to another thread.

Each request still returns only once its own reports are committed, so nothing the provider is
told was stored can be lost. If a combined write fails, every request in it writes its own
reports again alone, so a request that the database refuses fails only itself. A request not
taken by a write within ``PATIENCE`` seconds writes alone, so a write held up by a lock in the
database delays no other message's reports for longer.

Inside a transaction (``ATOMIC_REQUESTS``, or a caller's ``atomic``) reports are written alone: a
combined write would commit with the writer's transaction, not with each request's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import connections, router

from django_zhenzi.models import Message, StatusReport
from django_zhenzi.services.reports import ReportData, apply_reports

#: At most this many reports in one combined write (one request may bring more, written alone):
#: its transaction, its locks and its statements stay bounded.
MAX_REPORTS_PER_WRITE = 1000


#: Seconds a request waits for a write to take its reports; past it, one not taken yet writes
#: alone (a write held up by a lock in the database then delays no other message's reports).
PATIENCE = 5.0


@dataclass(eq=False)  # compared by identity: two requests may carry equal reports
class Waiting:
    """One request's reports, and what became of them."""

    reports: Sequence[ReportData]
    woken: threading.Event = field(default_factory=threading.Event)
    writes: bool = False  # this request's thread writes the next combined write
    stored: list[StatusReport] | None = None  # None once woken: write them alone


class Combiner:
    """The reports waiting for a write, for one source, in one process.

    One thread writes at a time. The others wait, each woken once: when its reports are
    written, or to write itself, taking every report waiting by then.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.lock = threading.Lock()
        self.waiting: list[Waiting] = []
        self.writing = False

    def apply(self, reports: Sequence[ReportData]) -> list[StatusReport]:
        mine = Waiting(reports)
        with self.lock:
            if self.writing:
                self.waiting.append(mine)
            else:
                self.writing = mine.writes = True
        if not mine.writes:
            self.wait(mine)
        if mine.writes:
            self.write(mine)
        if mine.stored is None:
            return apply_reports(reports, source=self.source)
        return mine.stored

    def wait(self, mine: Waiting) -> None:
        """Until ``mine`` is written or its thread is to write; after ``PATIENCE`` seconds, leave
        the queue if no write took ``mine`` yet (then it is written alone)."""
        while not mine.woken.wait(PATIENCE):
            with self.lock:
                if mine in self.waiting:
                    self.waiting.remove(mine)
                    return

    def write(self, mine: Waiting) -> None:
        """Write ``mine`` and every report waiting, in one transaction; then pass the turn on.

        Alone, errors are raised as if ``apply_reports`` were called directly. Together, a
        failure leaves every request's reports unstored, to be written again alone."""
        with self.lock:
            batch, count = [mine], len(mine.reports)
            while self.waiting and count + len(self.waiting[0].reports) <= MAX_REPORTS_PER_WRITE:
                batch.append(self.waiting.pop(0))
                count += len(batch[-1].reports)
        try:
            if len(batch) == 1:
                mine.stored = apply_reports(mine.reports, source=self.source)
                return
            try:
                stored = apply_reports(
                    [report for waiting in batch for report in waiting.reports],
                    source=self.source,
                )
            except Exception:  # each request writes its own again, and fails alone if it must
                return
            start = 0
            for waiting in batch:
                waiting.stored = stored[start : start + len(waiting.reports)]
                start += len(waiting.reports)
        finally:
            self.pass_turn(batch)

    def pass_turn(self, batch: list[Waiting]) -> None:
        with self.lock:
            following = self.waiting.pop(0) if self.waiting else None
            if following is None:
                self.writing = False
            else:
                following.writes = True
        if following is not None:
            following.woken.set()
        for waiting in batch[1:]:
            waiting.woken.set()


_combiners: dict[str, Combiner] = {}
_combiners_lock = threading.Lock()


def apply_reports_combined(
    reports: Sequence[ReportData], *, source: str = StatusReport.Source.CALLBACK
) -> list[StatusReport]:
    """``apply_reports``, written together with the reports that other threads of this process
    are applying at the same moment (see the module's docstring)."""
    if connections[router.db_for_write(Message)].in_atomic_block:
        return apply_reports(reports, source=source)
    combiner = _combiners.get(source)
    if combiner is None:
        with _combiners_lock:
            combiner = _combiners.setdefault(source, Combiner(source))
    return combiner.apply(reports)
