"""Zhenzi Cloud SMS (榛子云短信) for Django.

``from django_zhenzi import send_sms``. Importing this package imports no Django: the client
(``django_zhenzi.client``) and the sandbox work in any Python program.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: Messages "sent" through the locmem backend, for tests; emptied before each test.
outbox: list[Any] = []

__all__ = ["outbox", "send_sms"]


def __getattr__(name: str) -> Any:
    if name == "send_sms":
        from django_zhenzi.api import send_sms

        return send_sms
    raise AttributeError(f"module 'django_zhenzi' has no attribute {name!r}")
