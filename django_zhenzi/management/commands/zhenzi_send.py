"""``manage.py zhenzi_send``: send a text or a template to numbers given as arguments or in a file.

Numbers are checked first (invalid ones are listed and skipped, repeated ones sent once); then
they go to ``send_sms`` in chunks of ``CHUNK_SIZE``, so a file of many thousand numbers keeps
memory and transactions small. One line per number tells its messageId and outcome.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser, OutputWrapper
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from django_zhenzi import send_sms, services, signals
from django_zhenzi.client import ZhenziInputError, normalize_number
from django_zhenzi.management.base import ZhenziCommand
from django_zhenzi.models import Message
from django_zhenzi.priority import Priority
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.services.policy import pauses_sending
from django_zhenzi.status import SENT_STATUSES, Status

#: Numbers per ``send_sms`` call: the rows of one chunk are created, sent and printed together.
CHUNK_SIZE = 500

#: Shortest run that gets a progress bar on a terminal (verbosity 2 always shows it).
PROGRESS_MIN_TOTAL = 50


@dataclass
class Recipients:
    """The numbers to send to, in order and once each, and how many were invalid or repeated."""

    numbers: list[str] = field(default_factory=list)
    invalid: int = 0
    duplicates: int = 0


@dataclass
class Tally:
    """How the messages of one run ended."""

    sent: int = 0
    queued: int = 0
    retrying: int = 0
    unknown: int = 0
    failed: int = 0

    def count(self, message: Message, *, queue: bool) -> None:
        if message.status in SENT_STATUSES:
            self.sent += 1
        elif message.status == Status.QUEUED:
            if queue:
                self.queued += 1
            else:
                self.retrying += 1
        elif message.status == Status.FAILED:
            self.failed += 1
        else:
            self.unknown += 1

    @property
    def not_sent(self) -> int:
        return self.retrying + self.unknown + self.failed


class Progress:
    """A plain-text progress bar: redrawn in place on a terminal, a line per 10% elsewhere."""

    WIDTH = 30

    def __init__(self, stream: OutputWrapper, total: int, *, enabled: bool) -> None:
        self.stream = stream
        self.total = total
        self.enabled = enabled and total > 0
        self.in_place = stream.isatty()
        self.done = 0
        self.shown = -1  # the last percentage (terminal) or tenth (elsewhere) written
        self.drawn_length = 0

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        if not self.enabled:
            return
        percent = self.done * 100 // self.total
        step = percent if self.in_place else percent // 10
        if step != self.shown:
            self.shown = step
            self._draw(percent)

    def clear(self) -> None:
        """Remove the bar so other output can be written (a terminal only)."""
        if self.enabled and self.in_place and self.shown >= 0:
            self.stream.write("\r" + " " * self.drawn_length + "\r", style_func=str, ending="")
            self.stream.flush()

    def redraw(self) -> None:
        if self.enabled and self.in_place and self.shown >= 0:
            self._draw(self.done * 100 // self.total)

    def finish(self) -> None:
        if self.enabled and self.in_place and self.shown >= 0:
            self.stream.write("", style_func=str)  # keep the full bar, end its line

    def _draw(self, percent: int) -> None:
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        text = f"[{bar}] {self.done}/{self.total} {percent}%"
        self.drawn_length = len(text)
        if self.in_place:
            self.stream.write("\r" + text, style_func=str, ending="")
        else:
            self.stream.write(text, style_func=str)
        self.stream.flush()


def read_file_numbers(stream: TextIO, name: str) -> Iterator[tuple[str, str]]:
    """``(where, number)`` for each number in a text or CSV file: the first column of each row.

    Blank rows are skipped, and so is a first row without any digit (a header such as
    ``phone,name`` or ``手机号``). Cells are stripped of spaces and of a byte order mark.
    """
    reader = csv.reader(stream)
    seen_data = False
    for row in reader:
        cell = row[0].strip().lstrip("\ufeff").strip() if row else ""
        if not cell:
            continue
        if not seen_data and not any(character.isdigit() for character in cell):
            seen_data = True
            continue
        seen_data = True
        yield f"{name}:{reader.line_num}", cell


class Command(ZhenziCommand):
    help = gettext_lazy(
        "Send an SMS (a text, or a console template with parameters) to the numbers given as "
        "arguments and/or in a file, and print each message's messageId and outcome. Exits "
        "non-zero when any message was not sent."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "numbers",
            nargs="*",
            metavar="NUMBER",
            help=gettext_lazy("Mainland mobile numbers (11 digits; spaces, dashes, +86 allowed)."),
        )
        content = parser.add_mutually_exclusive_group(required=True)
        content.add_argument(
            "--message",
            metavar="TEXT",
            help=gettext_lazy("The text to send, signature included: 【签名】..."),
        )
        content.add_argument(
            "--template",
            metavar="ID",
            help=gettext_lazy("The id of an approved template from the Zhenzi console."),
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="VALUE",
            help=gettext_lazy(
                "A template parameter; repeat for each placeholder, in order ({1}, {2}, ...)."
            ),
        )
        parser.add_argument(
            "--file",
            metavar="PATH",
            help=gettext_lazy(
                "Read numbers from this file ('-' for standard input): one per line, or the "
                "first column of a UTF-8 CSV file; a header row and blank lines are skipped."
            ),
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help=gettext_lazy(
                "Only queue the messages and print their messageIds; zhenzi_send_queued "
                "workers send them."
            ),
        )
        parser.add_argument(
            "--priority",
            choices=Priority.words(),
            default=Priority.NORMAL.word,
            help=gettext_lazy(
                "With --queue: due messages are sent by priority, so a high one never waits "
                "behind a bulk send. Default: normal."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext_lazy(
                "Check the content and the numbers and print what would be sent; send and "
                "store nothing."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        queue, dry_run = options["queue"], options["dry_run"]
        try:
            content = services.validate_content(
                options["message"], options["template"], options["param"], None
            )
        except ZhenziInputError as invalid:
            raise CommandError(str(invalid)) from invalid
        try:
            services.check_backend()
        except ImproperlyConfigured as wrong:
            raise CommandError(
                _("The SMS configuration is wrong: {error}").format(error=wrong)
            ) from wrong

        sources = [
            (_("argument {n}").format(n=n), raw) for n, raw in enumerate(options["numbers"], 1)
        ]
        if options["file"]:
            sources += self._read_file(options["file"], options.get("stdin"))
        recipients = self._check_numbers(sources)
        if not recipients.numbers and not recipients.invalid:
            raise CommandError(_("No phone number given: pass numbers as arguments or --file."))

        if dry_run:
            self._dry_run(content, recipients, queue=queue)
            return
        tally = Tally()
        stopped = ""
        if recipients.numbers:
            stopped = self._send(recipients.numbers, options, tally, queue=queue)
        self._finish(recipients, tally, queue=queue, stopped=stopped)

    # Reading and checking the numbers

    def _read_file(self, path: str, stdin: TextIO | None) -> list[tuple[str, str]]:
        try:
            if path == "-":
                return list(read_file_numbers(stdin or sys.stdin, "stdin"))
            with open(path, encoding="utf-8-sig", newline="") as stream:
                return list(read_file_numbers(stream, path))
        except csv.Error as error:
            raise CommandError(
                _("{path} is not a CSV or text file: {error}").format(path=path, error=error)
            ) from error
        except UnicodeDecodeError as error:
            raise CommandError(
                _("{path} is not UTF-8 text ({error}); save it as UTF-8 (CSV UTF-8).").format(
                    path=path, error=error
                )
            ) from error
        except OSError as error:
            raise CommandError(
                _("Cannot read {path}: {error}").format(path=path, error=error.strerror or error)
            ) from error

    def _check_numbers(self, sources: Iterable[tuple[str, str]]) -> Recipients:
        recipients = Recipients()
        first_seen: dict[str, str] = {}
        for where, raw in sources:
            try:
                number = normalize_number(raw)
            except ZhenziInputError as error:
                recipients.invalid += 1
                self._line(
                    _("{number}  -  invalid ({where}): {error}").format(
                        number=raw, where=where, error=error
                    )
                )
                continue
            if number in first_seen:
                recipients.duplicates += 1
                self._line(
                    _("{number}  -  skipped ({where}): already listed ({first})").format(
                        number=number, where=where, first=first_seen[number]
                    )
                )
                continue
            first_seen[number] = where
            recipients.numbers.append(number)
        return recipients

    # Sending

    def _send(
        self, numbers: list[str], options: dict[str, Any], tally: Tally, *, queue: bool
    ) -> str:
        """Send (or queue) chunk by chunk; why sending stopped early, or ""."""
        progress = Progress(
            self.stderr,
            len(numbers),
            enabled=self.verbosity >= 2
            or (self.stderr.isatty() and len(numbers) >= PROGRESS_MIN_TOTAL),
        )

        def one_attempt_done(sender: Any, old_status: str, **kwargs: Any) -> None:
            if old_status == Status.SENDING:
                progress.advance()

        signals.status_changed.connect(one_attempt_done)
        try:
            for start in range(0, len(numbers), CHUNK_SIZE):
                chunk = numbers[start : start + CHUNK_SIZE]
                try:
                    rows = send_sms(
                        chunk,
                        options["message"],
                        template_id=options["template"],
                        template_params=options["param"] or None,
                        queue=queue,
                        priority=options["priority"],
                    )
                except RateLimited as refusal:  # with ZHENZI["LIMIT_ALL_SENDS"]
                    raise CommandError(
                        _(
                            "Stopped after {done} of {total} numbers: an abuse limit refused "
                            "the rest ({refusal})."
                        ).format(done=start, total=len(numbers), refusal=refusal)
                    ) from refusal
                if queue:
                    progress.advance(len(rows))
                progress.clear()
                for row in rows:
                    tally.count(row, queue=queue)
                    self._line(self._outcome(row, queue=queue))
                progress.redraw()
                refused = next((row for row in rows if self._paused_by(row)), None)
                if refused is not None:
                    return self._stop_reason(refused, left=len(numbers) - start - len(chunk))
        finally:
            signals.status_changed.disconnect(one_attempt_done)
            progress.finish()
        return ""

    @staticmethod
    def _paused_by(message: Message) -> bool:
        """Whether the provider refused the account on this message's attempt (the policy
        pauses sending: every further message would be refused too)."""
        return message.status == Status.QUEUED and pauses_sending(message.error_code)

    @staticmethod
    def _stop_reason(refused: Message, *, left: int) -> str:
        reason = _(
            "Stopped at the first refusal of the account: {error} The messages not sent stay "
            "queued; a zhenzi_send_queued worker sends them once the account works again."
        ).format(error=refused.error_text)
        if left:
            reason += " " + ngettext(
                "{left} number not tried, nothing stored for it.",
                "{left} numbers not tried, nothing stored for them.",
                left,
            ).format(left=left)
        return reason

    # Output

    def _outcome(self, message: Message, *, queue: bool) -> str:
        if message.status == Status.QUEUED and not queue:
            status = _("queued for a retry")
        elif message.status == Status.UNKNOWN:
            status = _("unknown, a worker will ask the provider")
        else:
            status = str(Status(message.status).label)
        line = f"{message.number}  {message.message_id}  {status}"
        return f"{line}: {message.error_text}" if message.error_text else line

    def _dry_run(self, content: services.Content, recipients: Recipients, *, queue: bool) -> None:
        if content.template_id:
            shown = _("template {id} with parameters {params}").format(
                id=content.template_id, params=list(content.template_params)
            )
        else:
            shown = content.text
        self._line(_("Content: {content}").format(content=shown))
        would = _("would queue") if queue else _("would send")
        for number in recipients.numbers:
            self._line(f"{number}  -  {would}")
        self._line(
            _("Dry run: {messages}, {invalid}, {duplicates}. Nothing was sent or stored.").format(
                messages=ngettext(
                    "{count} message to send", "{count} messages to send", len(recipients.numbers)
                ).format(count=len(recipients.numbers)),
                invalid=ngettext(
                    "{count} invalid number", "{count} invalid numbers", recipients.invalid
                ).format(count=recipients.invalid),
                duplicates=ngettext(
                    "{count} repeated number skipped",
                    "{count} repeated numbers skipped",
                    recipients.duplicates,
                ).format(count=recipients.duplicates),
            )
        )
        if recipients.invalid:
            raise CommandError(
                ngettext(
                    "{count} number is invalid.", "{count} numbers are invalid.", recipients.invalid
                ).format(count=recipients.invalid)
            )

    def _finish(
        self, recipients: Recipients, tally: Tally, *, queue: bool, stopped: str = ""
    ) -> None:
        if queue:
            summary = _(
                "Queued {queued}, invalid {invalid}, repeated numbers skipped {duplicates}."
            )
        else:
            summary = _(
                "Sent {sent}, failed {failed}, queued for a retry {retrying}, unknown {unknown}, "
                "invalid {invalid}, repeated numbers skipped {duplicates}."
            )
        self._line(
            summary.format(
                queued=tally.queued,
                sent=tally.sent,
                failed=tally.failed,
                retrying=tally.retrying,
                unknown=tally.unknown,
                invalid=recipients.invalid,
                duplicates=recipients.duplicates,
            )
        )
        if stopped:
            raise CommandError(stopped)
        not_done = tally.not_sent + recipients.invalid
        if not_done:
            total = len(recipients.numbers) + recipients.invalid
            raise CommandError(self._not_done(not_done, total, queue=queue))

    @staticmethod
    def _not_done(count: int, total: int, *, queue: bool) -> str:
        if count == total and queue:
            text = ngettext(
                "{count} number was not queued.", "{count} numbers were not queued.", count
            )
        elif count == total:
            text = ngettext("{count} number was not sent.", "{count} numbers were not sent.", count)
        elif queue:
            text = ngettext(
                "{count} of {total} numbers was not queued.",
                "{count} of {total} numbers were not queued.",
                count,
            )
        else:
            text = ngettext(
                "{count} of {total} numbers was not sent.",
                "{count} of {total} numbers were not sent.",
                count,
            )
        return text.format(count=count, total=total)

    def _line(self, text: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(text)
