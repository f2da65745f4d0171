"""A pytest plugin, loaded automatically where django-zhenzi is installed.

It empties ``django_zhenzi.outbox`` (the locmem backend's) before each test, as Django empties
``mail.outbox``.
"""

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _django_zhenzi_empty_outbox() -> Iterator[None]:
    import django_zhenzi

    django_zhenzi.outbox = []
    yield
