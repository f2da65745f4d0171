"""Moved to ``django_zhenzi.webhooks.parser``; its refusals are ``CallbackRefused`` and
``CallbackTooLarge`` in ``django_zhenzi.exceptions``.

Kept so code written for the old layout goes on working: every name still resolves, with a
DeprecationWarning naming its new home.
"""

from __future__ import annotations

import warnings
from typing import Any

NEW_NAMES = {"RefusedBody": "CallbackRefused", "BodyTooLarge": "CallbackTooLarge"}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # the import system probing the module
        raise AttributeError(name)
    from django_zhenzi.webhooks import parser

    value = getattr(parser, name)  # an unknown name raises AttributeError, as it should
    home = (
        f"django_zhenzi.exceptions.{NEW_NAMES[name]}"
        if name in NEW_NAMES
        else f"django_zhenzi.webhooks.parser.{name}"
    )
    warnings.warn(
        f"django_zhenzi.callback.{name} is deprecated: use {home}.",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
