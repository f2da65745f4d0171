"""What the app's management commands share."""

from __future__ import annotations

import argparse
import math
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _


class ZhenziCommand(BaseCommand):
    """A command whose ``help`` may be a lazy translation, and that says "The SMS configuration
    is wrong" (a CommandError, no traceback) when a setting stops it."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except ImproperlyConfigured as wrong:
            raise CommandError(
                _("The SMS configuration is wrong: {error}").format(error=wrong)
            ) from wrong

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.description = str(self.help)  # argparse formats only a str, not a lazy string
        return parser


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(
            _("{value!r} is not a whole number of at least 1.").format(value=value)
        )
    return number


def positive_seconds(value: str) -> float:
    """An argparse type: a finite number of seconds above 0 (a wait of 0 would spin)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(
            _("{value!r} is not a number of seconds above 0.").format(value=value)
        )
    return seconds
