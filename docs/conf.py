"""Sphinx configuration of the django-zhenzi documentation (English, and Simplified Chinese
through the catalogues in locale/: ``sphinx-build -D language=zh_CN``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]
os.environ["DJANGO_SETTINGS_MODULE"] = "docs_settings"  # not a test run's settings
django.setup()

import django_zhenzi  # noqa: E402 (after django.setup())

project = "django-zhenzi"
author = "django-zhenzi contributors"
copyright = "django-zhenzi contributors"
release = version = django_zhenzi.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "zhenzi_docs",
]
exclude_patterns = ["_build", "README.rst", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# Translations: docs/locale/<language>/LC_MESSAGES/<page>.po, one catalogue per page.
locale_dirs = ["locale/"]
gettext_compact = False
gettext_uuid = False
gettext_location = False
# Screenshots: admin-messages.png, and admin-messages.zh_CN.png in the Chinese build.
figure_language_filename = "{root}.{language}{ext}"

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
# The docs build offline: intersphinx inventories only when asked for (ZHENZI_DOCS_ONLINE=1).
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "django": ("https://docs.djangoproject.com/en/stable/", None),
    }
    if os.environ.get("ZHENZI_DOCS_ONLINE")
    else {}
)

html_theme = "furo"
html_title = "django-zhenzi"
html_static_path = ["_static"]
html_show_sourcelink = False
