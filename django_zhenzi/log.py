"""Keep the callback token out of access logs.

The token is the secret part of the callback URL, and ``runserver`` logs the path of every
request (logger ``django.server``). Add :class:`HideCallbackToken` to the handlers that log
request paths (see docs/reports.rst). Web servers in front of Django log paths too: configure their
access logs the same way.
"""

from __future__ import annotations

import logging
import re

#: What replaces a secret in logged and stored text (here, and in stored callback payloads).
MASK = "[removed]"


#: ``.../callback/<token>`` wherever the project mounted the app's URLs (a prefix, a language
#: code, a script name): group 1 keeps the path, the token that follows is replaced.
CALLBACK_PATH = re.compile(r"(/callback/)[^/\s?\"]+")


class HideCallbackToken(logging.Filter):
    """Replaces the token of any callback path in a record's message with ``[removed]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = CALLBACK_PATH.sub(r"\g<1>" + MASK, message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
