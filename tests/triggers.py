"""Real database faults: a trigger that makes the database itself refuse a write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

TRIGGER = "zhenzi_test_refuse"
REFUSAL = "refused by a test trigger"


def create_statements(vendor: str, table: str, event: str, condition: str) -> list[str]:
    """The SQL creating a trigger that raises before each ``event`` on ``table`` whose new row
    meets ``condition`` (an SQL expression on ``NEW``, the same on every database)."""
    if vendor == "postgresql":
        return [
            f"CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF {condition} THEN RAISE EXCEPTION '{REFUSAL}'; END IF; RETURN NEW; END $$",
            f"CREATE TRIGGER {TRIGGER} BEFORE {event} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()",
        ]
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER {TRIGGER} BEFORE {event} ON {table} WHEN {condition} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        ]
    return [  # MySQL / MariaDB
        f"CREATE TRIGGER {TRIGGER} BEFORE {event} ON {table} FOR EACH ROW "
        f"BEGIN IF {condition} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{REFUSAL}'; "
        "END IF; END"
    ]


def drop_statements(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [f"DROP TRIGGER {TRIGGER} ON {table}", f"DROP FUNCTION {TRIGGER}()"]
    return [f"DROP TRIGGER {TRIGGER}"]


@contextmanager
def database_refuses(table: str, event: str, condition: str = "1 = 1") -> Iterator[None]:
    """While inside, the database raises on every ``event`` (INSERT, UPDATE) of a row of
    ``table`` meeting ``condition``, in whichever statement or transaction the write runs.
    MySQL/MariaDB commit on CREATE TRIGGER: use it in tests with ``transaction=True``."""
    with connection.cursor() as cursor:
        for sql in create_statements(connection.vendor, table, event, condition):
            cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for sql in drop_statements(connection.vendor, table):
                cursor.execute(sql)
