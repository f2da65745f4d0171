"""What makes a verification code and its message valid: read by the verification use cases
when they send a code, and by the system checks (E020, E021) that check the settings at start-up.
"""

from __future__ import annotations

import string

MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 10
CODE_PLACEHOLDERS = frozenset({"code", "minutes"})


def code_message_is_valid(text: str) -> bool:
    """Whether ``text`` is a format string with ``{code}`` and no placeholder but ``{code}`` and
    ``{minutes}``."""
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError:  # an unmatched brace
        return False
    return "code" in fields and fields <= CODE_PLACEHOLDERS
