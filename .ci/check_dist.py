"""Checks the built distributions: run with the interpreter of a virtualenv holding only the wheel.

- the wheel holds every file of the source package that is not Python (templates, static files,
  locale files, py.typed) and every migration;
- the sdist ships the package, README, CHANGELOG and licence, and leaves tests, the example and
  the documentation's sources out (the docs are built from the repository);
- the installed package (not the source tree) imports and its app loads in a bare Django project.
"""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

root = Path(__file__).resolve().parent.parent
dist = Path(sys.argv[1])
(wheel,) = dist.glob("*.whl")
(sdist,) = dist.glob("*.tar.gz")

source = {
    path.relative_to(root).as_posix()
    for path in (root / "django_zhenzi").rglob("*")
    if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
}
with zipfile.ZipFile(wheel) as archive:
    in_wheel = set(archive.namelist())
missing = sorted(source - in_wheel)
assert not missing, f"the wheel lacks {missing}"

with tarfile.open(sdist) as archive:
    sdist_names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
for required in ("README.rst", "CHANGELOG.rst", "LICENSE", "setup.cfg", "pyproject.toml"):
    assert required in sdist_names, f"the sdist lacks {required}"
missing = sorted(source - sdist_names)
assert not missing, f"the sdist lacks {missing}"
leaked = sorted(
    n for n in sdist_names if n.startswith(("tests/", "example_project/", ".ci/", "docs/"))
)
assert not leaked, f"the sdist ships {leaked[:5]}"

probe = """
import django, django_zhenzi, pathlib
from django.conf import settings
settings.configure(INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
    "django_zhenzi"], DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
    "NAME": ":memory:"}}, ZHENZI={"APP_ID": "x", "APP_SECRET": "y"})
django.setup()
from django.core.management import call_command
call_command("check")
import django_zhenzi.client, django_zhenzi.sandbox
assert "site-packages" in django_zhenzi.__file__, django_zhenzi.__file__
print("installed", django_zhenzi.__version__, "from", pathlib.Path(django_zhenzi.__file__).parent)
"""
subprocess.run([sys.executable, "-c", probe], check=True, cwd="/")
print(f"{wheel.name}: {len(in_wheel)} files; {sdist.name}: {len(sdist_names)} files; all present")
