"""``zhenzi_send_queued --processes N``: N worker processes under one command.

The supervisor (the command's own process) starts each worker with multiprocessing's "spawn"
method: a fresh interpreter that sets Django up from the same settings and ``sys.path``, so it
shares no thread, lock or database connection with its parent. It forwards SIGTERM and SIGINT to
the workers (each finishes its messages in flight, as one ``--loop`` worker does), starts again
a worker that died unexpectedly, waiting longer after each quick death so a crash loop doesn't
spin, and returns once every worker has exited, with their totals added up.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from django_zhenzi.services import PassResult

# A worker process imports this module (for its target) before Django is set up: nothing here
# may import the models at import time.

#: Seconds before the first restart of a worker that died; doubled after each quick death.
RESTART_WAIT = 1.0
#: The longest wait before a restart.
MAX_RESTART_WAIT = 30.0
#: A worker that ran this long before it died died "slowly": its next restart waits RESTART_WAIT.
HEALTHY_RUN = 60.0


def run_worker_process(
    options: dict[str, Any], settings_module: str, results: Connection, verbosity: int
) -> None:
    """The body of one worker process: ``services.run_workers(**options)`` until done or told
    to stop by SIGTERM or SIGINT; its total goes back to the supervisor through ``results``."""
    # First: a stop that comes while Django is set up (the command stopped just after it started
    # or restarted this process) ends the run before its first pass instead of killing it.
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop.set())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django

    django.setup()
    from django_zhenzi import services
    from django_zhenzi.management.commands.zhenzi_send_queued import report_batch

    report = functools.partial(report_batch, verbosity)
    total = services.run_workers(stop=stop, on_batch=report, **options)
    results.send(dataclasses.asdict(total))
    results.close()


@dataclasses.dataclass
class Slot:
    """One of the N places for a worker process, and the history of the one in it."""

    number: int
    process: BaseProcess | None = None
    results: Connection | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None


class Supervisor:
    """Runs ``count`` worker processes with ``options`` (keyword arguments of
    ``services.run_workers``); see the module's docstring."""

    def __init__(
        self,
        count: int,
        options: dict[str, Any],
        *,
        loop: bool,
        settings_module: str,
        say: Callable[[str], None],
        verbosity: int = 1,
        target: Callable[..., None] = run_worker_process,
    ) -> None:
        from django_zhenzi.services import PassResult

        self.context = multiprocessing.get_context("spawn")
        self.target = target
        self.options = options
        self.verbosity = verbosity
        self.loop = loop
        self.settings_module = settings_module
        self.say = say
        self.slots = [Slot(number) for number in range(1, count + 1)]
        self.total = PassResult()
        self.failures: list[str] = []
        self.stopping = False

    def run(self) -> PassResult:
        """Start the workers and supervise them until all have exited."""
        previous = {
            signum: signal.signal(signum, self._stop) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for slot in self.slots:
                self._start(slot)
            while any(slot.process or slot.restart_at is not None for slot in self.slots):
                self._wait()
                for slot in self.slots:
                    process, results = slot.process, slot.results
                    if process and results and process.exitcode is not None:
                        self._reap(slot, process, results)
                    if slot.restart_at is not None and time.monotonic() >= slot.restart_at:
                        self._start(slot)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.total

    def _stop(self, signum: int, frame: object) -> None:
        if not self.stopping:
            self.say(_("Stopping: finishing the messages in flight..."))
        self.stopping = True
        for slot in self.slots:
            slot.restart_at = None
            if slot.process is not None and slot.process.exitcode is None:
                os.kill(slot.process.pid, signal.SIGTERM)  # type: ignore[arg-type]

    def _start(self, slot: Slot) -> None:
        slot.restart_at = None
        if self.stopping:
            return
        receiving, sending = self.context.Pipe(duplex=False)
        slot.process = self.context.Process(
            target=self.target,
            args=(self.options, self.settings_module, sending, self.verbosity),
            name=f"zhenzi-worker-process-{slot.number}",
        )
        slot.process.start()
        sending.close()  # the child's end: closed here, so a dead child leaves the pipe at EOF
        slot.results, slot.started_at = receiving, time.monotonic()

    def _wait(self) -> None:
        """Until a worker exits, a restart is due, or a signal came."""
        running = [slot.process.sentinel for slot in self.slots if slot.process is not None]
        restarts = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        timeout = max(0.0, min(restarts) - time.monotonic()) if restarts else 1.0
        wait(running, timeout=min(timeout, 1.0))  # type: ignore[arg-type]

    def _reap(self, slot: Slot, process: BaseProcess, results: Connection) -> None:
        slot.process = slot.results = None
        outcome = self._result(results)
        results.close()
        if outcome is not None:
            self.total.add(outcome)
            self.total.paused = self.total.paused or outcome.paused
        code = process.exitcode
        if code == 0 or (self.stopping and code == -signal.SIGTERM):
            # Killed by the SIGTERM sent to stop it: it was still starting (its handler is its
            # first step), so it had done nothing.
            return
        died = signal.Signals(-code).name if code is not None and code < 0 else str(code)
        if self.stopping or (not self.loop and code is not None and code > 0):
            # Stopping, or a run that ends by itself: a worker that failed is not run again.
            self.failures.append(
                _("Worker process {number} exited with {code}.").format(
                    number=slot.number, code=died
                )
            )
            return
        ran = time.monotonic() - slot.started_at
        slot.quick_deaths = 0 if ran >= HEALTHY_RUN else slot.quick_deaths + 1
        delay = min(RESTART_WAIT * 2 ** max(slot.quick_deaths - 1, 0), MAX_RESTART_WAIT)
        slot.restart_at = time.monotonic() + delay
        self.say(
            _(
                "Worker process {number} (pid {pid}) exited with {code}; starting it again in "
                "{seconds} s."
            ).format(number=slot.number, pid=process.pid, code=died, seconds=f"{delay:g}")
        )

    @staticmethod
    def _result(results: Connection) -> PassResult | None:
        from django_zhenzi.services import PassResult

        try:
            if results.poll():
                return PassResult(**results.recv())
        except (EOFError, OSError):
            pass
        return None
