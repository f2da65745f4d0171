"""README.rst stays true: every setting and every system check id is documented."""

import re
from pathlib import Path

import pytest

from django_zhenzi import checks
from django_zhenzi.conf import SETTINGS
from tests.paths import REPO

README = (REPO / "README.rst").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_setting_is_documented(name):
    assert f"``{name}``" in README


def test_every_check_id_is_documented():
    package = Path(checks.__file__).parent
    source = "".join(path.read_text(encoding="utf-8") for path in package.glob("*.py"))
    ids = set(re.findall(r"django_zhenzi\.[EW]\d{3}", source))
    assert len(ids) >= 15
    assert sorted(i for i in ids if f"``{i}``" not in README) == []


def test_the_test_command_is_marked_for_ci():
    marker = README.index(".. ci-test-command")
    command = README[marker:].split("::", 1)[1].strip().splitlines()[0]
    assert command == (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest'
    )
