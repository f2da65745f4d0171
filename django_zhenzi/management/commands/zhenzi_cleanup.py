"""``manage.py zhenzi_cleanup --days N``: delete old messages whose fate is settled."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from django_zhenzi import services
from django_zhenzi.management.base import ZhenziCommand, positive_int


def counted(result: services.CleanupResult) -> dict[str, str]:
    """Each count of ``result`` in words ("1 message", "4 messages"), for the summary."""
    # ngettext with literal texts, so that makemessages finds them.
    return {
        "messages": ngettext("{count} message", "{count} messages", result.messages).format(
            count=result.messages
        ),
        "reports": ngettext(
            "{count} status report of theirs", "{count} status reports of theirs", result.reports
        ).format(count=result.reports),
        "orphans": ngettext(
            "{count} orphan status report", "{count} orphan status reports", result.orphan_reports
        ).format(count=result.orphan_reports),
        "snapshots": ngettext(
            "{count} balance snapshot", "{count} balance snapshots", result.balance_snapshots
        ).format(count=result.balance_snapshots),
        "codes": ngettext(
            "{count} verification code", "{count} verification codes", result.verification_codes
        ).format(count=result.verification_codes),
        "limits": ngettext(
            "{count} rate-limit row", "{count} rate-limit rows", result.rate_limit_rows
        ).format(count=result.rate_limit_rows),
    }


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
        result = services.delete_history_older_than(options["days"], dry_run=options["dry_run"])
        if options["dry_run"]:
            summary = _(
                "Would delete {messages}, {reports}, {orphans}, {snapshots}, {codes} and {limits}."
            )
        else:
            summary = _(
                "Deleted {messages}, {reports}, {orphans}, {snapshots}, {codes} and {limits}."
            )
        if options["verbosity"] >= 1:
            self.stdout.write(summary.format(**counted(result)))
