"""``manage.py zhenzi_cleanup --days N``: delete old messages whose fate is settled."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_zhenzi import services
from django_zhenzi.management.base import ZhenziCommand, positive_int


class Command(ZhenziCommand):
    help = gettext_lazy(
        "Delete messages created more than --days days ago that are sent, delivered, "
        "undelivered or failed, with their status reports; also orphan status reports, balance "
        "snapshots, expired verification codes and rate-limit rows older than that. Queued, "
        "sending and unknown messages are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=positive_int,
            required=True,
            help=gettext_lazy("Age in days (at least 1) beyond which rows are deleted."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext_lazy("Only count what would be deleted."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = services.delete_old_messages(options["days"], dry_run=options["dry_run"])
        if options["dry_run"]:
            summary = _(
                "Would delete {messages} messages, {reports} of their status reports, "
                "{orphans} orphan status reports, {snapshots} balance snapshots, {codes} "
                "verification codes and {limits} rate-limit rows."
            )
        else:
            summary = _(
                "Deleted {messages} messages, {reports} of their status reports, "
                "{orphans} orphan status reports, {snapshots} balance snapshots, {codes} "
                "verification codes and {limits} rate-limit rows."
            )
        if options["verbosity"] >= 1:
            self.stdout.write(
                summary.format(
                    messages=result.messages,
                    reports=result.reports,
                    orphans=result.orphan_reports,
                    snapshots=result.balance_snapshots,
                    codes=result.verification_codes,
                    limits=result.rate_limit_rows,
                )
            )
