"""``manage.py zhenzi_send``: send a text or a template to numbers given as arguments or in a file.

Numbers are checked first (invalid ones are listed and skipped, repeated ones sent once); then
they go to ``send_sms`` in chunks of ``CHUNK_SIZE``, so a file of many thousand numbers keeps
memory and transactions small. One line per number tells its messageId and outcome.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from django_zhenzi import send_sms, services, signals
from django_zhenzi.client import ZhenziInputError, normalize_number
from django_zhenzi.management.base import ZhenziCommand
from django_zhenzi.management.number_files import read_numbers_file
from django_zhenzi.management.progress import Progress
from django_zhenzi.models import Message
from django_zhenzi.priority import Priority
from django_zhenzi.services import PassResult, Recipients
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.services.policy import pauses_sending
from django_zhenzi.status import Status

#: Numbers per ``send_sms`` call: the rows of one chunk are created, sent and printed together.
CHUNK_SIZE = 500

#: Shortest run that gets a progress bar on a terminal (verbosity 2 always shows it).
PROGRESS_MIN_TOTAL = 50


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
        services.validate_backend_settings()

        sources = [
            (_("argument {n}").format(n=n), raw) for n, raw in enumerate(options["numbers"], 1)
        ]
        if options["file"]:
            sources += read_numbers_file(options["file"], options.get("stdin"))
        recipients = services.sort_recipients(raw for _where, raw in sources)
        self._report_skipped(sources, recipients)
        if not recipients.numbers and not recipients.invalid:
            raise CommandError(_("No phone number given: pass numbers as arguments or --file."))

        if dry_run:
            self._dry_run(content, recipients, queue=queue)
            return
        tally = services.PassResult()
        stopped = ""
        if recipients.numbers:
            stopped = self._send(recipients.numbers, options, tally, queue=queue)
        self._finish(recipients, tally, queue=queue, stopped=stopped)

    # Reading and checking the numbers

    def _report_skipped(self, sources: list[tuple[str, str]], recipients: Recipients) -> None:
        """A line for each invalid or repeated number, in the order given."""
        for position, (where, raw) in enumerate(sources):
            if position in recipients.invalid:
                self._line(
                    _("{number}  -  invalid ({where}): {error}").format(
                        number=raw, where=where, error=recipients.invalid[position]
                    )
                )
            elif position in recipients.repeats:
                first_where = sources[recipients.repeats[position]][0]
                self._line(
                    _("{number}  -  skipped ({where}): already listed ({first})").format(
                        number=normalize_number(raw), where=where, first=first_where
                    )
                )

    # Sending

    def _send(
        self, numbers: list[str], options: dict[str, Any], tally: PassResult, *, queue: bool
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
                    tally.count(row)
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
        ).format(error=refused.error_reason)
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
        return f"{line}: {message.error_reason}" if message.error_text else line

    def _dry_run(self, content: services.Content, recipients: Recipients, *, queue: bool) -> None:
        invalid, repeats = len(recipients.invalid), len(recipients.repeats)
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
                    "{count} invalid number", "{count} invalid numbers", invalid
                ).format(count=invalid),
                duplicates=ngettext(
                    "{count} repeated number skipped",
                    "{count} repeated numbers skipped",
                    repeats,
                ).format(count=repeats),
            )
        )
        if invalid:
            raise CommandError(
                ngettext(
                    "{count} number is invalid.", "{count} numbers are invalid.", invalid
                ).format(count=invalid)
            )

    def _finish(
        self, recipients: Recipients, tally: PassResult, *, queue: bool, stopped: str = ""
    ) -> None:
        # A row still queued is queued as asked (--queue), or queued for a retry after a try.
        queued, retrying = (tally.retried, 0) if queue else (0, tally.retried)
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
                queued=queued,
                sent=tally.sent,
                failed=tally.failed,
                retrying=retrying,
                unknown=tally.unknown,
                invalid=len(recipients.invalid),
                duplicates=len(recipients.repeats),
            )
        )
        if stopped:
            raise CommandError(stopped)
        not_done = retrying + tally.unknown + tally.failed + len(recipients.invalid)
        if not_done:
            total = len(recipients.numbers) + len(recipients.invalid)
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
