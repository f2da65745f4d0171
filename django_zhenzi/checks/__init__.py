"""System checks for ``settings.ZHENZI`` and the database: one small function per rule, each with
its own id. Check ids are documented in docs/settings.rst: never reuse or renumber one.

- ``settings``: the ZHENZI dict itself, the account, transport, queue and callback keys (E001-E011,
  W001);
- ``codes``: verification codes and abuse limits (E020-E029, W020-W029);
- ``database``: the database the messages live in (E030-E039, W030-W039);
- ``base``: what they share (the tag, the registering decorator, reading a key).
"""

from django_zhenzi.checks import codes, database, settings
from django_zhenzi.checks.base import GENERATE_TOKEN_COMMAND, TAG
from django_zhenzi.checks.database import sqlite_transaction_mode_warnings

__all__ = [
    "GENERATE_TOKEN_COMMAND",
    "TAG",
    "codes",
    "database",
    "settings",
    "sqlite_transaction_mode_warnings",
]
