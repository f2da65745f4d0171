"""README.rst stays short and true: CI's test command is marked, and it points to the
documentation, which documents every setting and check id (tests/project/test_docs.py)."""

import re

from tests.paths import REPO

README = (REPO / "README.rst").read_text(encoding="utf-8")


def test_the_test_command_is_marked_for_ci():
    marker = README.index(".. ci-test-command")
    command = README[marker:].split("::", 1)[1].strip().splitlines()[0]
    assert command == (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest'
    )


def test_every_link_into_the_docs_names_a_page_that_exists():
    pages = re.findall(r"readthedocs\.io/(?:en|zh-cn)/latest/(\w*)\.html", README)
    assert len(pages) >= 10
    assert sorted({p for p in pages if not (REPO / "docs" / f"{p}.rst").exists()}) == []
    assert "zh-cn/latest/" in README  # the Chinese site
