"""Keep the callback token out of access logs.

The token is the secret part of the callback URL, and ``runserver`` logs the path of every
request (logger ``django.server``). Add :class:`HideCallbackToken` to the handlers that log
request paths (see the README). Web servers in front of Django log paths too: configure their
access logs the same way.
"""

from __future__ import annotations

import logging
import re
from functools import cache

from django.urls import reverse

MASK = "[removed]"


@cache
def callback_path_pattern() -> re.Pattern[str]:
    """The callback's path up to its token (group 1), followed by the token."""
    prefix = reverse("django_zhenzi:callback", kwargs={"token": "token"}).removesuffix("token/")
    return re.compile("(" + re.escape(prefix) + r")[^/\s?\"]+")


class HideCallbackToken(logging.Filter):
    """Replaces the token of any callback path in a record's message with ``[removed]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = callback_path_pattern().sub(r"\g<1>" + MASK, message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
