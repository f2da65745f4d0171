"""Zhenzi Cloud SMS (榛子云短信) for Django.

The public API: ``from django_zhenzi import send_sms, get_backend, send_code, check_code``; the
errors are in ``django_zhenzi.exceptions`` and the signals in ``django_zhenzi.signals``.

Importing this package imports no Django: the four functions are imported on first use (type
checkers see them directly), so the client (``django_zhenzi.client``) and the sandbox work in
any Python program.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_zhenzi.api import send_sms
    from django_zhenzi.backends import get_backend
    from django_zhenzi.verification.codes import check_code, send_code

__version__ = "0.1.0"

#: Messages "sent" through the locmem backend, for tests; emptied before each test.
outbox: list[Any] = []

#: Where each function of the public API is defined.
_LAZY = {
    "send_sms": "django_zhenzi.api",
    "get_backend": "django_zhenzi.backends",
    "send_code": "django_zhenzi.verification.codes",
    "check_code": "django_zhenzi.verification.codes",
}

__all__ = ["check_code", "get_backend", "outbox", "send_code", "send_sms"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'django_zhenzi' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # the next look-up finds it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
