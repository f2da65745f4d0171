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
    store_and_advance: str | None  # all three in one statement (PostgreSQL only)


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
    # sent_at is qualified: the statement of one_statement() joins another row with the column.
    assignments = (
        f"{status} = %s, {column(Message, 'provider_status')} = %s, "
        f"{column(Message, 'status_changed_at')} = %s, "
        f"{sent_at} = COALESCE({message_table}.{sent_at}, %s), "
        f"{column(Message, 'maybe_sent')} = %s"
    )
    advance = (
        f"UPDATE {message_table} SET {assignments} "  # noqa: S608
        f"WHERE {column(Message, 'id')} = %s AND {status} IN "
    )
    together = (
        one_statement(connection, lock, assignments) if connection.vendor == "postgresql" else None
    )
    return Statements(lock, insert, returning, tuple(converters), advance, together)


def one_statement(connection: BaseDatabaseWrapper, lock: str, assignments: str) -> str:
    """PostgreSQL: the locked SELECT, the conditional move and the INSERT as one statement.

    The row is locked first (``target``, read once), so its status is the latest committed one
    even when a concurrent report has just moved it: the move is decided on it and the signals
    report it as the old status. The move and the INSERT read ``target``, so they run after it;
    an unknown messageId leaves ``target`` empty, and the report is stored as an orphan.
    Parameters: the messageId; the move's status, provider status, time, time again, the
    cleared maybe_sent, and the array of statuses it may move from; the report's values with
    its payload twice (masked, then as received; the message's ``content_masked`` chooses).
    """
    quote = connection.ops.quote_name
    message_table = quote(Message._meta.db_table)
    message_pk = quote(Message._meta.pk.column)
    status = quote(Message._meta.get_field("status").column)
    report_values = [
        f"target.{message_pk}"
        if field.name == "message"
        else f"CASE WHEN target.{quote(Message._meta.get_field('content_masked').column)} "
        "THEN %s ELSE %s END"
        if field.name == "payload"
        else "%s"
        for field in REPORT_FIELDS
    ]
    report_table = quote(StatusReport._meta.db_table)
    columns = ", ".join(f"target.{quote(field.column)}" for field in MESSAGE_FIELDS)
    return (
        f"WITH target AS ({lock}), "  # noqa: S608 (names from the models, values as parameters)
        f"moved AS (UPDATE {message_table} SET {assignments} FROM target "
        f"WHERE {message_table}.{message_pk} = target.{message_pk} "
        f"AND target.{status} = ANY(%s) RETURNING {message_table}.{message_pk}), "
        f"stored AS (INSERT INTO {report_table} "
        f"({', '.join(quote(field.column) for field in REPORT_FIELDS)}) "
        f"SELECT {', '.join(report_values)} FROM (VALUES (1)) AS one LEFT JOIN target ON TRUE "
        f"RETURNING {report_table}.{quote(StatusReport._meta.pk.column)}) "
        f"SELECT stored.{quote(StatusReport._meta.pk.column)}, "
        f"EXISTS (SELECT 1 FROM moved), {columns} FROM stored LEFT JOIN target ON TRUE"
    )


def locked_message(message_id: str, using: str) -> Message | None:
    """The message with ``message_id``, its row locked until the transaction ends (no lock on
    SQLite, which has one writer at a time anyway); None if there is none."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(statements(connection).lock_message, [message_id])
        row = cursor.fetchone()
    return None if row is None else message_from_row(row, using)


def message_from_row(row: Sequence[Any], using: str) -> Message:
    """The message whose every column ``row`` holds, in ``MESSAGE_FIELDS`` order."""
    connection = connections[using]
    values = list(row)
    for position, converter, expression in statements(connection).converters:
        values[position] = converter(values[position], expression, connection)
    return Message.from_db(using, MESSAGE_NAMES, values)


def supports_one_statement(using: str) -> bool:
    """Whether a request with one report can be stored in one statement on ``using``."""
    return supported(using) and connections[using].vendor == "postgresql"


def store_and_advance(
    report: StatusReport, masked_payload: Any, below: Sequence[str], using: str
) -> tuple[Message | None, bool]:
    """INSERT ``report`` (unsaved, its message not looked up) and move its message to the
    report's status if it is in one of ``below``, in one statement: outside a transaction it
    is its own, with no BEGIN or COMMIT to wait for. Gives ``report`` its primary key; returns
    the message as it was before the move (None for an orphan) and whether it moved."""
    connection = connections[using]
    when = Message._meta.get_field("status_changed_at").get_db_prep_save(
        report.received_at, connection
    )
    report_values = []
    for field in REPORT_FIELDS:
        if field.name == "payload":
            report_values.append(field.get_db_prep_save(masked_payload, connection))
        if field.name != "message":
            report_values.append(field.get_db_prep_save(getattr(report, field.attname), connection))
    move = [report.status, report.raw_status, when, when, "", list(below)]
    with connection.cursor() as cursor:
        cursor.execute(
            statements(connection).store_and_advance,
            [report.reported_message_id, *move, *report_values],
        )
        report.pk, moved, *row = cursor.fetchone()
    report._state.adding = False
    report._state.db = using
    return (None if row[0] is None else message_from_row(row, using)), moved


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
