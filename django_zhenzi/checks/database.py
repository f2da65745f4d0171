"""Checks of the database the messages live in (E030-E039, W030-W039)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, register
from django.core.checks import Warning as CheckWarning
from django.db import connections, router
from django.utils.connection import ConnectionDoesNotExist
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from django_zhenzi.checks.base import TAG

SQLITE_LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})
"""SQLite transaction modes that take the write lock when the transaction begins."""

SQLITE_BUSY_TIMEOUT = 20
"""The busy timeout (seconds) W030's hint suggests when the database sets none."""


@register(TAG)
def check_sqlite_transaction_mode(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W030: the messages' database is SQLite with DEFERRED transactions (the default)."""
    alias = router.db_for_write(apps.get_model("django_zhenzi", "Message"))
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        return []  # Django itself reports a router that names an unknown database
    return sqlite_transaction_mode_warnings(alias, connection.vendor, connection.settings_dict)


def sqlite_transaction_mode_warnings(
    alias: str, vendor: str, database: dict[str, Any]
) -> list[CheckMessage]:
    """W030 for the database ``alias`` (``DATABASES[alias]`` is ``database``) when it is SQLite
    and its transactions are DEFERRED. A deferred transaction that has read and then writes fails
    at once with "database is locked" when another process holds the write lock: it cannot wait
    (the busy timeout does not apply), so a worker and the site writing at once make each other
    fail. IMMEDIATE (or EXCLUSIVE) transactions take the lock when they begin, waiting for it."""
    options = database.get("OPTIONS") or {}
    mode = options.get("transaction_mode") or "DEFERRED"
    if vendor != "sqlite" or (isinstance(mode, str) and mode.upper() in SQLITE_LOCKING_MODES):
        return []
    suggested = {
        "transaction_mode": "IMMEDIATE",
        "timeout": options.get("timeout", SQLITE_BUSY_TIMEOUT),
    }
    return [
        CheckWarning(
            format_lazy(
                _(
                    "The database {alias} that stores the SMS messages is SQLite with {mode} "
                    "transactions, so a queue worker and the site writing at once can fail with "
                    '"database is locked".'
                ),
                alias=json.dumps(alias),
                mode=mode,
            ),
            hint=format_lazy(
                _(
                    "In DATABASES[{alias}], set {options} (keep any other options). Each "
                    'transaction then takes the write lock when it begins, waiting up to "timeout" '
                    "seconds for it instead of failing."
                ),
                alias=json.dumps(alias),
                options=f'"OPTIONS": {json.dumps(suggested, default=str)}',
            ),
            id="django_zhenzi.W030",
        )
    ]
