"""The documentation builds without a warning, documents every setting and system check id, and
its Chinese translation is complete and current, as the app's own translation is
(test_translations.py).

Needs the ``docs`` extra (Sphinx); skipped without it. The builds run in a subprocess: the docs'
conf.py sets Django up with its own settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from django_zhenzi.conf import SETTINGS
from tests.paths import REPO

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e .[docs]")
from babel.messages.pofile import read_po  # Sphinx brings Babel

DOCS = REPO / "docs"
CATALOGUES = DOCS / "locale" / "zh_CN" / "LC_MESSAGES"

pytestmark = pytest.mark.slow


def sphinx_build(builder: str, out: Path, *options: str, source: Path = DOCS) -> None:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, *options,
         str(source), str(out)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def messages_of(path: Path) -> list:
    with path.open("rb") as file:
        return [message for message in read_po(file) if message.id]


def catalogue_problems(templates: Path, catalogues: Path) -> list[str]:
    """What keeps ``catalogues`` (the .po files) from translating every message of
    ``templates`` (the .pot files just extracted from the sources): a missing catalogue, an
    entry missing, untranslated or fuzzy, an entry whose English is gone (stale)."""
    problems = []
    for template in sorted(templates.glob("*.pot")):
        wanted = {message.id for message in messages_of(template)}
        catalogue = catalogues / f"{template.stem}.po"
        if not catalogue.exists():
            problems.append(f"{catalogue.name}: missing (run sphinx-intl update)")
            continue
        messages = messages_of(catalogue)
        have = {message.id for message in messages}
        problems += [f"{catalogue.name}: not in the catalogue: {m!r}" for m in wanted - have]
        problems += [f"{catalogue.name}: stale: {m!r}" for m in have - wanted]
        for message in messages:
            if message.id in wanted and (not message.string or message.fuzzy):
                state = "fuzzy" if message.fuzzy else "untranslated"
                problems.append(f"{catalogue.name}: {state}: {message.id!r}")
    extra = {path.stem for path in catalogues.glob("*.po")} - {
        path.stem for path in templates.glob("*.pot")
    }
    problems += [f"{name}.po: no page has these messages any more" for name in sorted(extra)]
    return problems


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gettext")
    sphinx_build("gettext", out)
    return out


def test_the_english_docs_build_and_list_every_setting_and_check_id(tmp_path):
    sphinx_build("text", tmp_path)
    settings_page = (tmp_path / "settings.txt").read_text(encoding="utf-8")
    assert [name for name in SETTINGS if f'"{name}":' not in settings_page] == []

    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from zhenzi_docs import check_ids_in_code
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    ids = check_ids_in_code()
    assert len(ids) >= 20
    assert sorted(i for i in ids if i not in settings_page) == []
    # The command pages show each command's own --help.
    commands_page = (tmp_path / "commands.txt").read_text(encoding="utf-8")
    assert "usage: manage.py zhenzi_send_queued" in commands_page


def test_the_chinese_catalogues_are_complete_and_current(templates):
    assert len(list(templates.glob("*.pot"))) >= 15
    assert catalogue_problems(templates, CATALOGUES) == []


def test_a_stale_or_untranslated_entry_is_caught(templates, tmp_path):
    """The check above can fail: a catalogue with an entry emptied, one marked fuzzy and one
    whose English changed."""
    copy = tmp_path / "LC_MESSAGES"
    shutil.copytree(CATALOGUES, copy, ignore=shutil.ignore_patterns("*.mo"))
    catalogue = copy / "admin.po"
    text = catalogue.read_text(encoding="utf-8")
    text = text.replace('msgid "The admin"\nmsgstr "管理后台"', 'msgid "The admin"\nmsgstr ""')
    text = text.replace('msgid "Messages"\n', '#, fuzzy\nmsgid "Messages"\n', 1)
    text = text.replace('msgid "Status reports"', 'msgid "Delivery reports"')
    catalogue.write_text(text, encoding="utf-8")
    assert sorted(catalogue_problems(templates, copy)) == [
        "admin.po: fuzzy: 'Messages'",
        "admin.po: not in the catalogue: 'Status reports'",
        "admin.po: stale: 'Delivery reports'",
        "admin.po: untranslated: 'The admin'",
    ]


def test_the_chinese_docs_build_in_chinese(tmp_path):
    sphinx_build("html", tmp_path, "-D", "language=zh_CN")
    home = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in home and "快速开始" in home
    # Texts the app has in Chinese come from the app: error codes and command help.
    assert "余额不足" in (tmp_path / "troubleshooting.html").read_text(encoding="utf-8")
    commands = (tmp_path / "commands.html").read_text(encoding="utf-8")
    assert "由 zhenzi_send_queued 工作进程发送" in commands
    admin = (tmp_path / "admin.html").read_text(encoding="utf-8")
    assert "admin-messages.zh_CN.png" in admin
