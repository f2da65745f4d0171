"""Every Python and shell example in the documentation runs, so a renamed argument breaks a test,
not a reader.

The collector reads docs/*.rst. Per page, in order, in one namespace, against the sandbox and the
test database:

- ``.. code-block:: python``: executed.
- ``.. code-block:: shell`` (or ``console``, ``bash``, ``sh``): every line is a
  ``python manage.py COMMAND ...`` run with ``call_command``; anything else fails the test.
- ``.. example setup:`` and ``.. example check:``: comments (not shown in the built pages) whose
  indented body is Python run at that point: a setup defines what the next example takes for
  granted (a request, a file), a check asserts what the previous one promises.
- ``.. example: not run (REASON)`` just before a code block: the block is shown only (installing
  a package, a server that runs until Ctrl-C). Such blocks are few, and each says why.

Other languages (``text``, ``json``, ``ini``, ``yaml``) are output or configuration files, not
run. A bare ``::`` literal block is refused: an example must say its language.

The namespace holds ``sandbox`` (a running sandbox that ``settings.ZHENZI`` points at),
``settings``, ``Path``, ``configure(**settings)`` (an ``override_settings`` for the rest of the
page) and ``assert_importable(*dotted_paths)``.
"""

from __future__ import annotations

import importlib
import re
import shlex
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils.module_loading import import_string

from tests.paths import REPO

DOCS = REPO / "docs"
PAGES = sorted(path for path in DOCS.glob("*.rst") if path.name != "README.rst")
RUN = {"python": "python", "shell": "shell", "console": "shell"}
RUN |= {"bash": "shell", "sh": "shell"}
#: The most blocks the docs may show without running them.
MAX_NOT_RUN = 6

CODE_BLOCK = re.compile(r"^\.\. code-block:: *(\S*)\s*$")
HIDDEN = re.compile(r"^\.\. example (setup|check):\s*$")
NOT_RUN = re.compile(r"^\.\. example: not run \((.+)\)\s*$")


@dataclass
class Block:
    page: str
    line: int  # 1-based, of the directive
    language: str  # "python", "shell", a shown-only language, or "hidden" (setup and checks)
    code: str
    not_run: str = ""  # the reason, for a block shown only

    @property
    def runs(self) -> bool:
        return not self.not_run and (self.language == "hidden" or self.language in RUN)

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def indented_body(lines: list[str], start: int) -> str:
    """The indented lines after ``lines[start]`` (directive options skipped), dedented."""
    body: list[str] = []
    index = start + 1
    while index < len(lines) and re.match(r"^\s+:\S+:", lines[index]):
        index += 1  # an option of the directive
    while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
        body.append(lines[index])
        index += 1
    while body and not body[-1].strip():
        body.pop()
    indents = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    margin = min(indents, default=0)
    return "\n".join(line[margin:] for line in body).strip("\n") + "\n"


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    not_run = ""
    for index, line in enumerate(lines):
        if match := NOT_RUN.match(line):
            not_run = match.group(1)
        elif match := CODE_BLOCK.match(line):
            code = indented_body(lines, index)
            blocks.append(Block(path.name, index + 1, match.group(1), code, not_run))
            not_run = ""
        elif HIDDEN.match(line):
            blocks.append(Block(path.name, index + 1, "hidden", indented_body(lines, index)))
        elif not line.startswith(("..", " ")) and line.rstrip().endswith("::"):
            blocks.append(Block(path.name, index + 1, "bare", line))
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def test_the_docs_have_examples_and_every_one_says_its_language():
    assert len(PAGES) >= 15
    assert sum(block.runs for block in ALL_BLOCKS) >= 30
    assert [block.where for block in ALL_BLOCKS if block.language in ("bare", "")] == []


def test_few_examples_are_shown_without_running_and_each_says_why():
    not_run = [block for block in ALL_BLOCKS if block.not_run]
    assert 0 < len(not_run) <= MAX_NOT_RUN, [block.where for block in not_run]
    assert all(block.language in RUN for block in not_run), [b.where for b in not_run]


def test_the_collector_finds_what_the_convention_says(tmp_path):
    """The collector itself: a page with each kind of block."""
    page = tmp_path / "page.rst"
    page.write_text(
        "Intro::\n\n    bare\n\n"
        ".. example: not run (a server)\n\n.. code-block:: shell\n\n    runserver\n\n"
        ".. example setup:\n    x = 1\n\n"
        ".. code-block:: python\n   :caption: c\n\n    if x:\n        y = 2\n\n    z = 3\n\n"
        "Text.\n\n.. code-block:: json\n\n    {}\n",
        encoding="utf-8",
    )
    blocks = blocks_of(page)
    assert [(b.language, b.not_run, b.runs) for b in blocks] == [
        ("bare", "", False),
        ("shell", "a server", False),
        ("hidden", "", True),
        ("python", "", True),
        ("json", "", False),
    ]
    assert blocks[3].code == "if x:\n    y = 2\n\nz = 3\n"


def run_shell(block: Block) -> None:
    for line in block.code.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[:2] != ["python", "manage.py"] or len(words) < 3:
            pytest.fail(
                f"{block.where}: the collector runs only 'python manage.py COMMAND' lines, not"
                f" {line!r}: mark the block '.. example: not run (why)' if it is shown only"
            )
        call_command(*words[2:], stdout=StringIO(), stderr=StringIO())


def assert_importable(*paths: str) -> None:
    """Each dotted path names an importable module or an attribute of one."""
    for path in paths:
        try:
            importlib.import_module(path)
        except ImportError:
            import_string(path)


@pytest.fixture
def page_namespace(sandbox, tmp_path, monkeypatch) -> Iterator[dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    with ExitStack() as stack:

        def configure(**overrides: Any) -> None:
            stack.enter_context(override_settings(**overrides))

        configure(ZHENZI={**settings.ZHENZI, "API_URL": sandbox.url})
        yield {
            "__name__": "docs_example",
            "sandbox": sandbox,
            "settings": settings,
            "Path": Path,
            "configure": configure,
            "assert_importable": assert_importable,
        }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "page", [page.name for page in PAGES if any(b.runs for b in blocks_of(page))]
)
def test_the_examples_of_a_page_run(page, page_namespace):
    for block in blocks_of(DOCS / page):
        if not block.runs:
            continue
        if RUN.get(block.language) == "shell":
            run_shell(block)
            continue
        # Line numbers in a traceback point into the page.
        code = "\n" * block.line + block.code
        exec(compile(code, str(DOCS / page), "exec"), page_namespace)  # noqa: S102
