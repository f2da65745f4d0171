"""Send queued messages: once, or as a long-running worker with ``--loop``."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_zhenzi import services
from django_zhenzi.management.base import ZhenziCommand, positive_int, positive_seconds
from django_zhenzi.management.processes import Supervisor


class Command(ZhenziCommand):
    help = gettext_lazy(
        "Send the messages that are due: queued ones, retries, and reconciliation of ambiguous "
        "outcomes. Several workers may run at once, on several hosts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=positive_int,
            help=gettext_lazy("Stop after claiming this many messages."),
        )
        parser.add_argument(
            "--loop",
            action="store_true",
            help=gettext_lazy(
                "Keep running, waiting for new messages; stop cleanly on SIGTERM or SIGINT, "
                "finishing the messages in flight."
            ),
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=1,
            help=gettext_lazy("Messages sent at the same time (threads). Default: 1."),
        )
        parser.add_argument(
            "--processes",
            type=positive_int,
            default=1,
            help=gettext_lazy(
                "Worker processes, each with --concurrency threads, to use several CPU cores; "
                "one that dies is started again. Default: 1."
            ),
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=100,
            help=gettext_lazy("Messages each thread claims at once. Default: 100."),
        )
        parser.add_argument(
            "--account-wait",
            type=positive_seconds,
            default=services.worker.ACCOUNT_ERROR_PAUSE,
            help=gettext_lazy(
                "With --loop: while the provider refuses the account (no balance, wrong "
                "appSecret...), seconds between balance checks before sending resumes. "
                "Default: 60."
            ),
        )
        parser.add_argument(
            "--idle-wait",
            type=positive_seconds,
            default=1.0,
            help=gettext_lazy("With --loop: seconds to wait when nothing is due. Default: 1."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        services.validate_backend_settings()
        if options["processes"] > 1:
            total = self._run_processes(options)
        else:
            total = self._run_threads(options)
        if verbosity >= 1:
            self.stdout.write(self._summary(total))
        if total.paused:
            raise CommandError(
                _(
                    "Stopped: the provider refused the account; the messages stay queued. {reason}"
                ).format(reason=total.paused)
            )

    def _worker_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``services.run_workers`` the options give."""
        return {
            "concurrency": options["concurrency"],
            "batch_size": options["batch_size"],
            "loop": options["loop"],
            "idle_wait": options["idle_wait"],
            "account_wait": options["account_wait"],
        }

    def _run_threads(self, options: dict[str, Any]) -> services.PassResult:
        self._verbosity = options["verbosity"]
        stop = threading.Event()
        previous = self._stop_on_signals(stop) if options["loop"] else {}
        try:
            return services.run_workers(
                limit=options["limit"],
                stop=stop,
                on_batch=self._report,
                **self._worker_options(options),
            )
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run_processes(self, options: dict[str, Any]) -> services.PassResult:
        if options["limit"] is not None:
            raise CommandError(_("--limit cannot be combined with --processes."))
        count = options["processes"]
        worker_options = self._worker_options(options)
        worker_options["peers"] = count * options["concurrency"]
        supervisor = Supervisor(
            count,
            worker_options,
            loop=options["loop"],
            settings_module=settings.SETTINGS_MODULE,
            say=self.stderr.write,
            verbosity=options["verbosity"],
        )
        total = supervisor.run()
        if supervisor.failures:
            raise CommandError(" ".join(supervisor.failures))
        return total

    def _report(self, result: services.PassResult) -> None:
        if self._verbosity >= 2 and (result.claimed or result.reconciled):
            self.stdout.write(self._summary(result))

    def _stop_on_signals(self, stop: threading.Event) -> dict[int, Any]:
        def handle(signum: int, frame: object) -> None:
            self.stderr.write(_("Stopping: finishing the messages in flight..."))
            stop.set()

        return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def _summary(result: services.PassResult) -> str:
        return _(
            "sent {sent}, failed {failed}, retrying {retried}, unknown {unknown}, "
            "reconciled {reconciled}, expired claims {expired}"
        ).format(
            sent=result.sent,
            failed=result.failed,
            retried=result.retried,
            unknown=result.unknown,
            reconciled=result.reconciled,
            expired=result.expired_claims,
        )


def report_batch(verbosity: int, result: services.PassResult) -> None:
    """A worker process's ``Command._report``."""
    if verbosity >= 2 and (result.claimed or result.reconciled):
        print(Command._summary(result), flush=True)
