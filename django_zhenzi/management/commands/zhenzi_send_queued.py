"""Send queued messages: once, or as a long-running worker with ``--loop``."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_zhenzi import services
from django_zhenzi.management.base import ZhenziCommand, positive_int, positive_seconds


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
        stop = threading.Event()
        previous = self._stop_on_signals(stop) if options["loop"] else {}
        verbosity = options["verbosity"]

        def report(result: services.PassResult) -> None:
            if verbosity >= 2 and (result.claimed or result.reconciled):
                self.stdout.write(self._summary(result))

        services.validate_backend_settings()
        try:
            total = services.run_workers(
                concurrency=options["concurrency"],
                batch_size=options["batch_size"],
                limit=options["limit"],
                loop=options["loop"],
                idle_wait=options["idle_wait"],
                account_wait=options["account_wait"],
                stop=stop,
                on_batch=report,
            )
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if verbosity >= 1:
            self.stdout.write(self._summary(total))
        if total.paused:
            raise CommandError(
                _(
                    "Stopped: the provider refused the account; the messages stay queued. {reason}"
                ).format(reason=total.paused)
            )

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
