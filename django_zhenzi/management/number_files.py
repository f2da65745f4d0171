"""Reading phone numbers from a text or CSV file, for ``zhenzi_send --file``."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import TextIO

from django.core.management.base import CommandError
from django.utils.translation import gettext as _


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


def read_numbers_file(path: str, stdin: TextIO | None) -> list[tuple[str, str]]:
    """``(where, number)`` for each number in the file at ``path`` (``-``: ``stdin``); a file
    that cannot be read or decoded is a CommandError that says why."""
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
