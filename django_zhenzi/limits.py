"""Moved to ``django_zhenzi.services.limits``; ``RateLimited`` is in ``django_zhenzi.exceptions``.

Kept so code written for the old layout goes on working: every name still resolves, with a
DeprecationWarning naming its new home.
"""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # the import system probing the module
        raise AttributeError(name)
    from django_zhenzi.services import limits

    value = getattr(limits, name)  # an unknown name raises AttributeError, as it should
    home = "django_zhenzi.exceptions" if name == "RateLimited" else "django_zhenzi.services.limits"
    warnings.warn(
        f"django_zhenzi.limits.{name} is deprecated: import it from {home}.",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
