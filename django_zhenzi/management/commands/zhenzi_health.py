"""``manage.py zhenzi_health``: exit 0 when the site is healthy, 1 with one line per problem
otherwise (``services.health`` does the checking); ``--json`` for monitoring."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from django_zhenzi.management.base import ZhenziCommand
from django_zhenzi.services.health import run_checks


class Command(ZhenziCommand):
    help = gettext_lazy(
        "Check that SMS can go out: the provider answers and the balance is above the "
        "threshold, workers take the queue and settle 'unknown' messages, and delivery reports "
        "arrive. Exits 1 with one line per problem."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help=gettext_lazy(
                'Print {"healthy": ..., "problems": [{"id", "message", "details"}]} instead.'
            ),
        )
        parser.add_argument(
            "--local",
            action="store_true",
            help=gettext_lazy(
                "Do not ask Zhenzi: check the database only, the balance as last recorded "
                "(for frequent probes)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = run_checks(provider=not options["local"])
        if options["json"]:
            report = {
                "healthy": not problems,
                "problems": [problem.as_dict() for problem in problems],
            }
            self.stdout.write(json.dumps(report, ensure_ascii=False))
        else:
            for problem in problems:
                self.stdout.write(f"{problem.id}: {problem.message}")
        if problems:
            raise CommandError(
                ngettext("{count} problem found.", "{count} problems found.", len(problems)).format(
                    count=len(problems)
                ),
                returncode=1,
            )
        if not options["json"] and options["verbosity"] > 0:
            self.stdout.write(_("Healthy: no problem found."))
