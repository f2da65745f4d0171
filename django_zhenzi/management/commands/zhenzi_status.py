"""``manage.py zhenzi_status``: show messages by messageId, or sync statuses from the provider."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from django_zhenzi import services
from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import CHINA_TZ
from django_zhenzi.management.base import ZhenziCommand, positive_int
from django_zhenzi.models import Status
from django_zhenzi.reasons import Reason


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(
            _("{value!r} is not a number of seconds (0 or more).").format(value=value)
        )
    return number


class Command(ZhenziCommand):
    help = gettext_lazy(
        "Show messages by messageId: local status, attempts, last error and the provider's "
        "record. With --sync, ask the provider about sent messages that have no delivery "
        "report yet and record what it says."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "message_ids",
            nargs="*",
            metavar="MESSAGE_ID",
            help=gettext_lazy("The messageIds of the messages to show."),
        )
        parser.add_argument(
            "--local",
            action="store_true",
            help=gettext_lazy("Show only what is stored here; do not ask the provider."),
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help=gettext_lazy(
                "Ask the provider about sent messages without a final status and record the "
                "answers, like delivery reports."
            ),
        )
        parser.add_argument(
            "--older-than",
            type=seconds,
            metavar="SECONDS",
            help=gettext_lazy(
                "With --sync: only messages sent at least this long ago. Default: "
                "ZHENZI['STATUS_SYNC_AFTER']."
            ),
        )
        parser.add_argument(
            "--limit",
            type=positive_int,
            default=500,
            help=gettext_lazy("With --sync: ask about at most this many messages. Default: 500."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        message_ids = tuple(options["message_ids"])
        if options["sync"]:
            if message_ids or options["local"]:
                raise CommandError(_("--sync takes no messageIds and no --local."))
            self._sync(options["older_than"], options["limit"])
            return
        if options["older_than"] is not None:
            raise CommandError(_("--older-than only goes with --sync."))
        if not message_ids:
            raise CommandError(_("Give one or more messageIds, or --sync."))
        self._show(message_ids, ask_provider=not options["local"])

    def _sync(self, older_than: float | None, limit: int) -> None:
        finished = services.sync_statuses(older_than=older_than, limit=limit)
        self.stdout.write(
            ngettext(
                "{count} message got a final status from the provider.",
                "{count} messages got a final status from the provider.",
                finished,
            ).format(count=finished)
        )

    def _show(self, message_ids: tuple[str, ...], *, ask_provider: bool) -> None:
        unknown = provider_failures = 0
        for message_id in message_ids:
            lookup = services.look_up_message(message_id, ask_provider=ask_provider)
            if lookup.message is None:
                unknown += 1
            if lookup.provider_error is not None and not isinstance(
                lookup.provider_error, OperationNotSupported
            ):
                provider_failures += 1
            for line in self._describe(lookup):
                self.stdout.write(line)
        problems = []
        if unknown:
            problems.append(
                ngettext(
                    "{count} of {total} messageIds is not stored here.",
                    "{count} of {total} messageIds are not stored here.",
                    unknown,
                ).format(count=unknown, total=len(message_ids))
            )
        if provider_failures:
            problems.append(
                ngettext(
                    "The provider could not be asked about {count} messageId.",
                    "The provider could not be asked about {count} messageIds.",
                    provider_failures,
                ).format(count=provider_failures)
            )
        if problems:
            raise CommandError(" ".join(problems))

    def _describe(self, lookup: services.MessageLookup) -> list[str]:
        message = lookup.message
        if message is None:
            lines = [_("{id}: no such message here.").format(id=lookup.message_id)]
        else:
            lines = [
                ngettext(
                    "{id}: to {number}, {status}, {attempts} attempt",
                    "{id}: to {number}, {status}, {attempts} attempts",
                    message.attempts,
                ).format(
                    id=message.message_id,
                    number=message.number,
                    status=Status(message.status).label,
                    attempts=message.attempts,
                ),
                "  "
                + _("created {created}, sent {sent}").format(
                    created=self._time(message.created_at), sent=self._time(message.sent_at)
                ),
            ]
            if message.provider_status:
                lines.append(
                    "  " + _("last report: {status}").format(status=message.provider_status)
                )
            if message.error_text:
                lines.append("  " + _("last error: {error}").format(error=message.error_reason))
        if lookup.provider_error is not None:
            lines.append(
                "  "
                + _("provider: could not ask: {error}").format(
                    error=Reason.from_error(lookup.provider_error).render()
                )
            )
        elif lookup.asked_provider and lookup.record is None:
            lines.append("  " + _("provider: no record of this messageId."))
        elif lookup.record is not None:
            record = lookup.record
            lines.append(
                "  "
                + _("provider: {status}, to {number}, created {created} (China time)").format(
                    status=record.status or "-",
                    number=record.number or "-",
                    created=record.create_time.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
                    if record.create_time
                    else "-",
                )
            )
        return lines

    @staticmethod
    def _time(moment: datetime | None) -> str:
        """The local time with its zone ("2026-05-01 14:03:27 CST"), or its offset from UTC
        ("+08:00") when the zone has no name of letters."""
        if moment is None:
            return "-"
        local = timezone.localtime(moment)
        zone = local.tzname() or ""
        if not zone.isalpha():
            offset = local.strftime("%z")  # "+0800"; localtime() is always aware
            zone = f"{offset[:3]}:{offset[3:5]}"
        return f"{local:%Y-%m-%d %H:%M:%S} {zone}"
