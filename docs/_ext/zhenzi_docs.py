"""Pages generated from the code, so they cannot drift from it.

- ``.. zhenzi-settings::``: every key of ``settings.ZHENZI`` from the settings registry
  (``django_zhenzi.conf.SETTINGS``): its types, default and meaning.
- ``.. zhenzi-checks::``: every system check id found in the app's code, with what it
  reports (``CHECKS`` below). An id in the code but not here, or here but no longer in the code,
  is a build warning (an error with ``-W``).
- ``.. zhenzi-command:: NAME``: the command's ``--help``, in the build's language.
- ``.. zhenzi-error-codes::``: every provider error code (``django_zhenzi.client.errors``):
  its meaning and what to do in the build's language, and what the app does with it
  (``django_zhenzi.services.policy``).
- ``.. zhenzi-english-include:: PATH``: a reStructuredText file included as it is and left out
  of the translation (the changelog).

Text that the app already has in Chinese (error codes, command help) is taken from the app in
the Chinese build and marked untranslatable; everything else goes through the docs' catalogue.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

#: What each system check reports. The ids must be exactly those in the app's code.
CHECKS: dict[str, str] = {
    "django_zhenzi.E001": "``settings.ZHENZI`` is not a dict.",
    "django_zhenzi.E002": "An unknown key in ``ZHENZI`` (a typo); the hint names the closest "
    "known key.",
    "django_zhenzi.E003": 'A key has the wrong type (e.g. ``TIMEOUT = "10"``).',
    "django_zhenzi.E004": "``APP_ID`` is missing while the real Zhenzi backend is in use.",
    "django_zhenzi.E005": "``APP_SECRET`` is missing while the real Zhenzi backend is in use.",
    "django_zhenzi.E006": "``API_URL`` is not an absolute ``http(s)://`` URL.",
    "django_zhenzi.E007": "``API_URL`` uses plain HTTP to a host that is not loopback (the "
    "secret travels in the request body: HTTPS is a must).",
    "django_zhenzi.E008": "A number (``TIMEOUT``, ``MAX_ATTEMPTS``, a delay, a limit...) is not "
    "positive.",
    "django_zhenzi.E009": "A ``CALLBACK_TOKEN`` is shorter than 16 characters.",
    "django_zhenzi.E010": "``CLAIM_TIMEOUT`` is not more than twice ``TIMEOUT``.",
    "django_zhenzi.E011": "``RECONCILE_SETTLE`` is less than three times ``TIMEOUT``.",
    "django_zhenzi.E020": "``CODE_LENGTH`` is outside 4-10.",
    "django_zhenzi.E021": "``CODE_MESSAGE`` lacks ``{code}``, has another placeholder or an "
    "unmatched brace.",
    "django_zhenzi.E022": "Both ``CODE_TEMPLATE_ID`` and ``CODE_MESSAGE`` are set.",
    "django_zhenzi.E101": "``ACCOUNT_ADAPTER`` is (built on) ``ZhenziAccountAdapter`` but "
    "neither ``CODE_MESSAGE`` nor ``CODE_TEMPLATE_ID`` is set.",
    "django_zhenzi.E102": "``ACCOUNT_ADAPTER`` is ``ZhenziAccountAdapter`` but "
    "``django_zhenzi.contrib.allauth`` is not in ``INSTALLED_APPS``.",
    "django_zhenzi.E110": "``TWO_FACTOR_CALL_GATEWAY`` is ``ZhenziGateway``: Zhenzi cannot "
    "place calls.",
    "django_zhenzi.E111": "``TWO_FACTOR_SMS_GATEWAY`` is ``ZhenziGateway`` but neither "
    "``CODE_MESSAGE`` nor ``CODE_TEMPLATE_ID`` is set.",
    "django_zhenzi.E120": '``DISPATCH`` is not ``"worker"``, ``"celery"`` or ``"tasks"``.',
    "django_zhenzi.E121": '``DISPATCH`` is ``"celery"`` but Celery is not installed.',
    "django_zhenzi.E122": '``DISPATCH`` is ``"tasks"`` but Django\'s Tasks framework is missing '
    "(Django 6 has it; on 5.2 install the ``tasks`` extra).",
    "django_zhenzi.E123": "``DISPATCH_QUEUES`` maps something that is not a priority, or to an "
    "empty name.",
    "django_zhenzi.E124": "``TASKS_BACKEND`` is not in ``settings.TASKS``, or its ``QUEUES`` "
    "lack a queue a priority goes to.",
    "django_zhenzi.W001": "No ``CALLBACK_TOKEN``: the delivery-report callback will refuse "
    "every report.",
    "django_zhenzi.W020": "An hourly (per-minute) cap is above the daily one, so it has no effect.",
    "django_zhenzi.W030": "The database of the messages is SQLite with DEFERRED transactions "
    '(the default), so a worker and the site writing at once can fail with "database is '
    'locked"; the hint gives the ``OPTIONS`` to set.',
}

#: What the app does with a message that got a provider error code, by policy action.
ACTIONS = {
    "fail": "The message fails at once, with this code and its meaning; a person must act.",
    "pause": "The message goes back to the queue (the attempt is not counted) and sending "
    "pauses: a ``--loop`` worker checks the balance every ``--account-wait`` seconds and "
    "resumes by itself once the account works.",
    "retry": "The message is retried after a growing wait, up to ``MAX_ATTEMPTS`` times.",
}

CHECK_ID = re.compile(r"django_zhenzi\.[EW]\d{3}")


def check_ids_in_code() -> set[str]:
    """Every check id the app can report (its checks package and its contrib modules)."""
    import django_zhenzi

    package = Path(django_zhenzi.__file__).parent
    return {
        check_id
        for path in package.rglob("*.py")
        if "migrations" not in path.parts
        for check_id in CHECK_ID.findall(path.read_text(encoding="utf-8"))
    }


def django_language(sphinx_language: str | None) -> str:
    """The Django language code for a Sphinx build language (``zh_CN`` -> ``zh-hans``)."""
    if sphinx_language and sphinx_language.lower().startswith("zh"):
        return "zh-hans"
    return "en"


def untranslatable(node: nodes.Node) -> nodes.Node:
    """``node`` and everything in it, left out of the docs' catalogue."""
    for element in node.findall(nodes.TextElement):
        element["translatable"] = False
    return node


def literal(text: str) -> str:
    """``text`` as an inline literal, in reStructuredText."""
    return "``" + text.replace("\\", "\\\\") + "``"


def type_names(types: tuple[type, ...], item_types: tuple[type, ...]) -> str:
    names = []
    for kind in types:
        name = kind.__name__
        if kind in (list, tuple) and item_types:
            name += "[" + " | ".join(item.__name__ for item in item_types) + "]"
        names.append(literal(name))
    return " | ".join(names)


class ZhenziDirective(SphinxDirective):
    """A directive that writes reStructuredText and parses it in place."""

    def parse(self, lines: list[str], *, titles: bool = False) -> list[nodes.Node]:
        container = nodes.section() if titles else nodes.container()
        content = StringList(lines, source=self.get_source_info()[0])
        if titles:
            nested_parse_with_titles(self.state, content, container)
        else:
            self.state.nested_parse(content, self.content_offset, container)
        # Docutils notes (level 1, info) that a Chinese build reads "list-table" in English.
        return [
            node
            for node in container.children
            if not (isinstance(node, nodes.system_message) and node["level"] <= 1)
        ]

    @property
    def language(self) -> str:
        return django_language(self.config.language)


class SettingsDirective(ZhenziDirective):
    """Every setting of the registry, as a definition list."""

    def run(self) -> list[nodes.Node]:
        from django_zhenzi.conf import SETTINGS

        lines: list[str] = []
        for setting in SETTINGS.values():
            lines += [
                f"{literal(setting.name)}: {type_names(setting.types, setting.item_types)}"
                f" = {literal(repr(setting.default))}",
                f"    {setting.description}",
                "",
            ]
        (definitions,) = self.parse(lines)
        for term in definitions.findall(nodes.term):
            untranslatable(term)
        return [definitions]


class ChecksDirective(ZhenziDirective):
    """Every check id, with what it reports; a warning when the list and the code differ."""

    def run(self) -> list[nodes.Node]:
        in_code = check_ids_in_code()
        for missing in sorted(in_code - CHECKS.keys()):
            logger.warning(
                "system check %s is not documented: add it to CHECKS in %s", missing, __file__
            )
        for gone in sorted(CHECKS.keys() - in_code):
            logger.warning("system check %s is documented but no longer in the code", gone)
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 25 75", ""]
        lines += ["   * - Id", "     - Problem"]
        for check_id in sorted(in_code & CHECKS.keys()):
            lines += [f"   * - {literal(check_id)}", f"     - {CHECKS[check_id]}"]
        (table,) = self.parse(lines)
        for row in table.findall(nodes.row):
            untranslatable(row.children[0])
        return [table]


class CommandDirective(ZhenziDirective):
    """A management command's ``--help``, as argparse prints it, in the build's language."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from django.core.management import load_command_class
        from django.utils import translation

        name = self.arguments[0]
        command = load_command_class("django_zhenzi", name)
        # argparse wraps to the terminal's width: fix it, so every build prints the same.
        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"
        try:
            with translation.override(self.language):
                parser = command.create_parser("manage.py", name)
                text = parser.format_help()
        finally:
            if previous is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = previous
        block = nodes.literal_block(text, text, language="text")
        block["translatable"] = False
        return [block]


class ErrorCodesDirective(ZhenziDirective):
    """Each provider error code: its meaning and hint (the app's own texts, in the build's
    language) and what the app does with a message that gets it."""

    def run(self) -> list[nodes.Node]:
        from django_zhenzi.client.errors import ERROR_CODES
        from django_zhenzi.services.policy import PROVIDER_CODES

        chinese = self.language == "zh-hans"
        result: list[nodes.Node] = []
        for code, error in sorted(ERROR_CODES.items()):
            meaning = error.meaning_zh if chinese else error.meaning
            hint = error.hint_zh if chinese else error.hint
            action = PROVIDER_CODES[code].value
            section_id = f"error-{code}"
            section = nodes.section(ids=[section_id], names=[section_id])
            section += untranslatable(nodes.title(text=f"{code}: {meaning}"))
            section += untranslatable(nodes.paragraph(text=hint))
            section += self.parse([ACTIONS[action]])
            result.append(section)
        return result


class EnglishIncludeDirective(ZhenziDirective):
    """A reStructuredText file (relative to the docs' source) included without its own title
    (the page has one) and left out of the translation."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        path = Path(self.env.srcdir, self.arguments[0]).resolve()
        self.env.note_dependency(str(path))
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines and set(lines[0]) == {"="}:  # an overlined title: ===, Title, ===
            lines = lines[3:]
        return [untranslatable(node) for node in self.parse(lines, titles=True)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("zhenzi-settings", SettingsDirective)
    app.add_directive("zhenzi-checks", ChecksDirective)
    app.add_directive("zhenzi-command", CommandDirective)
    app.add_directive("zhenzi-error-codes", ErrorCodesDirective)
    app.add_directive("zhenzi-english-include", EnglishIncludeDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
