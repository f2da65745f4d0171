"""The statements of a request with one delivery report, written once per database connection.

A provider that sends one report per request costs the callback three statements: the message's
row, locked; the raw report; the conditional move. Building each through the ORM took more CPU
than running it (0.35 ms for the locked SELECT, 0.14 ms for the INSERT, 0.19 ms for the UPDATE;
the whole request now takes about 0.8 ms against 1.2 to 1.5 ms), so they are written here once
per connection from the models' metadata and the connection's own quoting, placeholders,
adaptation (``get_db_prep_save``) and converters, as the ORM would write and read them. Several
reports in one request still go through the ORM (their cost is shared by the batch).

The locked SELECT reads every column, so the instance given to ``status_changed`` and
``message_sent`` receivers is whole: with only the few columns the callback needs, each other
field a receiver reads would be one more query, inside the transaction that holds the lock
(the whole row costs about 40 µs more than four columns).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from django_zhenzi.models import Message, StatusReport

#: The report's columns, in the order of the INSERT's values.
REPORT_FIELDS = tuple(
    StatusReport._meta.get_field(name)
    for name in (
        "message",
        "reported_message_id",
        "number",
        "status",
        "raw_status",
        "source",
        "payload",
        "received_at",
    )
)
MESSAGE_FIELDS = tuple(Message._meta.concrete_fields)
MESSAGE_NAMES = tuple(field.attname for field in MESSAGE_FIELDS)

#: The databases whose SQL this module writes; others (Oracle, third-party backends) go through
#: the ORM.
VENDORS = frozenset({"postgresql", "sqlite", "mysql"})

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


@dataclass(frozen=True)
class Statements:
    """The SQL of one connection, and how to read the message's row there."""

    lock_message: str
    insert_report: str
    returning: bool  # the INSERT gives the new primary key (else: the cursor's last id)
    converters: tuple[tuple[int, Converter, Any], ...]  # (column, converter, expression)
    advance_prefix: str  # the UPDATE, up to the statuses it may move from


_built: weakref.WeakKeyDictionary[BaseDatabaseWrapper, Statements] = weakref.WeakKeyDictionary()
_building = threading.Lock()


def supported(using: str) -> bool:
    """Whether this module writes the statements for the database ``using``."""
    return connections[using].vendor in VENDORS


def statements(connection: BaseDatabaseWrapper) -> Statements:
    """The statements for ``connection`` (each thread has its own), built on first use."""
    found = _built.get(connection)
    if found is None:
        found = build(connection)
        with _building:
            _built[connection] = found
    return found


def build(connection: BaseDatabaseWrapper) -> Statements:
    quote = connection.ops.quote_name

    def column(model: Any, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    message_table = quote(Message._meta.db_table)
    # Names from the models, quoted by the connection; every value is a parameter.
    lock = (
        f"SELECT {', '.join(quote(field.column) for field in MESSAGE_FIELDS)} "  # noqa: S608
        f"FROM {message_table} WHERE {column(Message, 'message_id')} = %s"
    )
    if connection.features.has_select_for_update:
        lock += " FOR UPDATE"

    report_table = StatusReport._meta.db_table
    insert = (
        f"INSERT INTO {quote(report_table)} "  # noqa: S608
        f"({', '.join(quote(field.column) for field in REPORT_FIELDS)}) "
        f"VALUES ({', '.join(['%s'] * len(REPORT_FIELDS))})"
    )
    returning = connection.features.can_return_columns_from_insert
    if returning:
        insert += f" RETURNING {quote(StatusReport._meta.pk.column)}"

    converters = []
    for position, field in enumerate(MESSAGE_FIELDS):
        expression = field.get_col(Message._meta.db_table)
        for converter in [
            *connection.ops.get_db_converters(expression),
            *expression.get_db_converters(connection),
        ]:
            converters.append((position, converter, expression))

    status = column(Message, "status")
    sent_at = column(Message, "sent_at")
    advance = (
        f"UPDATE {message_table} SET {status} = %s, "  # noqa: S608
        f"{column(Message, 'provider_status')} = %s, "
        f"{column(Message, 'status_changed_at')} = %s, {sent_at} = COALESCE({sent_at}, %s), "
        f"{column(Message, 'maybe_sent')} = %s "
        f"WHERE {column(Message, 'id')} = %s AND {status} IN "
    )
    return Statements(lock, insert, returning, tuple(converters), advance)


def locked_message(message_id: str, using: str) -> Message | None:
    """The message with ``message_id``, its row locked until the transaction ends (no lock on
    SQLite, which has one writer at a time anyway); None if there is none."""
    connection = connections[using]
    prepared = statements(connection)
    with connection.cursor() as cursor:
        cursor.execute(prepared.lock_message, [message_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for position, converter, expression in prepared.converters:
        values[position] = converter(values[position], expression, connection)
    return Message.from_db(using, MESSAGE_NAMES, values)


def insert_report(report: StatusReport, using: str) -> None:
    """INSERT ``report`` as ``bulk_create`` would, and give it its primary key."""
    connection = connections[using]
    prepared = statements(connection)
    values = [
        field.get_db_prep_save(getattr(report, field.attname), connection)
        for field in REPORT_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(prepared.insert_report, values)
        if prepared.returning:
            (report.pk,) = cursor.fetchone()
        else:
            report.pk = connection.ops.last_insert_id(
                cursor, StatusReport._meta.db_table, StatusReport._meta.pk.column
            )
    report._state.adding = False
    report._state.db = using


def advance_row(
    pk: int, status: str, raw_status: str, moment: datetime, below: Sequence[str], using: str
) -> bool:
    """One message's conditional move to a reported ``status``, from any of ``below``, as
    ``transitions.advance_many`` writes it for many. True if the row moved."""
    connection = connections[using]
    prepared = statements(connection)
    when = Message._meta.get_field("status_changed_at").get_db_prep_save(moment, connection)
    sql = prepared.advance_prefix + f"({', '.join(['%s'] * len(below))})"
    with connection.cursor() as cursor:
        cursor.execute(sql, [status, raw_status, when, when, "", pk, *below])
        return cursor.rowcount > 0
