"""The statements that store delivery reports, written once per database connection.

Storing reports costs three statements: the messages' rows, locked; the raw reports; the
conditional move of each reported status. Building them through the ORM took more CPU than
running them (0.35 ms for a locked SELECT, 0.14 ms for the INSERT, 0.19 ms for the UPDATE; for a
batch, ``bulk_create``'s arrays on PostgreSQL cost more still), so they are written here once per
connection from the models' metadata and the connection's own quoting, placeholders, adaptation
(``get_db_prep_save``) and converters, as the ORM would write and read them. Only the lists of
placeholders depend on the count.

A worker's pass starts with one look at the queue (``look_at_queue``): how many messages are
due, whether any claim is stale, whether any ``unknown`` message is due; three ORM queries cost
it 3.5 ms of CPU, more than the rest of a pass of 25 messages, and found nothing to do in most.

Claiming a batch of queued messages on PostgreSQL is one statement too (``claim_queued``): the
conditional UPDATE of the rows its locking SELECT picks, returning them whole, instead of the
SELECT, the UPDATE and a second SELECT for the rows through the ORM.

On PostgreSQL a request with one report is one statement (``store_and_advance``): the lock, the
move and the INSERT in one, which outside a transaction is its own, so one round trip to the
database instead of five (BEGIN, SELECT, INSERT, UPDATE, COMMIT).

The locked SELECT reads every column, so the instance given to ``status_changed`` and
``message_sent`` receivers is whole: with only the few columns the callback needs, each other
field a receiver reads would be one more query, inside the transaction that holds the lock
(the whole row costs about 40 µs more than four columns).
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from django_zhenzi.models import Message, Status, StatusReport

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

#: The few columns of a message that storing a report needs, read instead of ``MESSAGE_FIELDS``
#: when no receiver of ``status_changed`` or ``message_sent`` would be given the message.
LEAN_FIELDS = tuple(
    Message._meta.get_field(name) for name in ("id", "message_id", "status", "content_masked")
)

#: The databases whose SQL this module writes; others (Oracle, third-party backends) go through
#: the ORM.
VENDORS = frozenset({"postgresql", "sqlite", "mysql"})

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


@dataclass(frozen=True)
class Reading:
    """The statements of one connection that read messages' rows of ``fields`` (every column,
    or ``LEAN_FIELDS``), and how to make a ``Message`` of such a row."""

    names: tuple[str, ...]  # the fields' attnames, in the rows' order
    converters: tuple[tuple[int, Converter, Any], ...]  # (column, converter, expression)
    lock_prefix: str  # the messages' rows by messageId: "... WHERE message_id IN "
    store_and_advance: str | None  # one report, stored and applied in one statement (PostgreSQL)

    def message(self, row: Sequence[Any], using: str) -> Message:
        """The message whose row is ``row``; the fields not read would be loaded from the
        database when read."""
        values = list(row)
        connection = connections[using]
        for position, converter, expression in self.converters:
            values[position] = converter(values[position], expression, connection)
        return Message.from_db(using, self.names, values)


@dataclass(frozen=True)
class Statements:
    """The SQL of one connection. Each ``*_prefix`` ends where a list of placeholders
    follows."""

    whole: Reading  # every column of a message
    lean: Reading  # only ``LEAN_FIELDS``
    lock_suffix: str  # FOR UPDATE, when the database has it
    insert_prefix: str  # "INSERT INTO ... VALUES "
    insert_row: str  # one report's placeholders, "(%s, ...)"
    returning: str  # the INSERT's RETURNING clause, or "" (then: the cursor's last id)
    insert_json: str | None  # PostgreSQL: the INSERT of any number of reports as one JSON array
    advance_prefix: str  # the conditional move: "UPDATE ... WHERE id IN "
    advance_from: str  # after the ids: " AND status IN "
    order_by_pk: str  # " ORDER BY id"
    look: str  # a worker pass's look at the queue (``look_at_queue``)

    def reading(self, whole: bool) -> Reading:
        return self.whole if whole else self.lean


_built: weakref.WeakKeyDictionary[BaseDatabaseWrapper, Statements] = weakref.WeakKeyDictionary()
_building = threading.Lock()


def supported(using: str) -> bool:
    """Whether this module writes the statements for the database ``using``."""
    return connections[using].vendor in VENDORS


def supports_one_statement(using: str) -> bool:
    """Whether a request with one report can be stored in one statement on ``using``."""
    return supported(using) and connections[using].vendor == "postgresql"


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
    lock_suffix = " FOR UPDATE" if connection.features.has_select_for_update else ""

    report_table = quote(StatusReport._meta.db_table)
    insert_prefix = (
        f"INSERT INTO {report_table} "  # noqa: S608
        f"({', '.join(quote(field.column) for field in REPORT_FIELDS)}) VALUES "
    )
    returning = ""
    if connection.features.can_return_rows_from_bulk_insert:
        returning = f" RETURNING {quote(StatusReport._meta.pk.column)}"

    status = column(Message, "status")
    sent_at = column(Message, "sent_at")
    # sent_at is qualified: the statement of one_statement() joins another row with the column.
    assignments = (
        f"{status} = %s, {column(Message, 'provider_status')} = %s, "
        f"{column(Message, 'status_changed_at')} = %s, "
        f"{sent_at} = COALESCE({message_table}.{sent_at}, %s), "
        f"{column(Message, 'maybe_sent')} = %s"
    )
    advance = f"UPDATE {message_table} SET {assignments} WHERE {column(Message, 'id')} IN "  # noqa: S608
    insert_json = insert_from_json(connection) if connection.vendor == "postgresql" else None
    next_attempt_at = column(Message, "next_attempt_at")
    look = (
        f"SELECT (SELECT COUNT(*) FROM (SELECT 1 AS one FROM {message_table} "  # noqa: S608
        f"WHERE {status} = %s AND {next_attempt_at} <= %s LIMIT %s) AS due), "
        f"EXISTS (SELECT 1 FROM {message_table} "
        f"WHERE {status} = %s AND {column(Message, 'claimed_at')} < %s), "
        f"EXISTS (SELECT 1 FROM {message_table} WHERE {status} = %s AND {next_attempt_at} <= %s)"
    )
    return Statements(
        whole=reading(connection, MESSAGE_FIELDS),
        lean=reading(connection, LEAN_FIELDS),
        lock_suffix=lock_suffix,
        insert_prefix=insert_prefix,
        insert_row=placeholders(len(REPORT_FIELDS)),
        returning=returning,
        insert_json=insert_json,
        advance_prefix=advance,
        advance_from=f" AND {status} IN ",
        order_by_pk=f" ORDER BY {quote(Message._meta.pk.column)}",
        look=look,
    )


def reading(connection: BaseDatabaseWrapper, fields: tuple[Any, ...]) -> Reading:
    """The statements reading messages' ``fields`` on ``connection`` (names from the models,
    quoted by the connection; every value a parameter)."""
    quote = connection.ops.quote_name
    converters = []
    for position, field in enumerate(fields):
        expression = field.get_col(Message._meta.db_table)
        for converter in [
            *connection.ops.get_db_converters(expression),
            *expression.get_db_converters(connection),
        ]:
            converters.append((position, converter, expression))
    lock_prefix = (
        f"SELECT {', '.join(quote(field.column) for field in fields)} "  # noqa: S608
        f"FROM {quote(Message._meta.db_table)} "
        f"WHERE {quote(Message._meta.get_field('message_id').column)} IN "
    )
    return Reading(
        names=tuple(field.attname for field in fields),
        converters=tuple(converters),
        lock_prefix=lock_prefix,
        store_and_advance=(
            one_statement(connection, fields) if connection.vendor == "postgresql" else None
        ),
    )


#: The values of ``store_and_advance``'s statement, each given once (``given``), in order.
GIVEN = (
    ("message_id", "text"),
    ("status", "text"),
    ("raw_status", "text"),
    ("moment", "timestamptz"),
    ("number", "text"),
    ("source", "text"),
    ("masked", "jsonb"),
    ("payload", "jsonb"),
)


def insert_from_json(connection: BaseDatabaseWrapper) -> str:
    """PostgreSQL: the INSERT of the reports given as one JSON array of rows (each the values
    of ``REPORT_FIELDS``, in order), returning their primary keys in the array's order.

    One parameter whatever the count: with a list of placeholders per report, a batch of more
    than six passed psycopg's limit of 50 parameters for statements it keeps parsed, and
    parsing it again on every call was a quarter of the CPU of a combined write. Text goes
    in as text (a value too long for its column fails, as it would as a parameter), JSON as
    JSON, anything else cast to its column's type.
    """
    quote = connection.ops.quote_name
    values = []
    for position, field in enumerate(REPORT_FIELDS):
        kind = field.db_type(connection)
        if kind == "jsonb":
            values.append(f"given.value->{position}")
        elif field.get_internal_type() in ("CharField", "TextField"):
            values.append(f"given.value->>{position}")
        else:
            values.append(f"(given.value->>{position})::{kind}")
    return (
        f"INSERT INTO {quote(StatusReport._meta.db_table)} "  # noqa: S608 (names from the models)
        f"({', '.join(quote(field.column) for field in REPORT_FIELDS)}) "
        f"SELECT {', '.join(values)} FROM jsonb_array_elements(%s::jsonb) "
        "WITH ORDINALITY AS given(value, position) ORDER BY given.position "
        f"RETURNING {quote(StatusReport._meta.pk.column)}"
    )


def one_statement(connection: BaseDatabaseWrapper, returned: Sequence[Any]) -> str:
    """PostgreSQL: the locked SELECT, the conditional move and the INSERT as one statement,
    returning the report's primary key, whether the message moved, and the message's
    ``returned`` columns as they were before the move (NULLs for an orphan).

    The row is locked first (``target``, read once), so its status is the latest committed one
    even when a concurrent report has just moved it: the move is decided on it and the signals
    report it as the old status. The move and the INSERT read ``target``, so they run after it;
    an unknown messageId leaves ``target`` empty, and the report is stored as an orphan.
    Each value is a parameter once (``given``, in ``GIVEN`` order; the payload twice, masked
    and as received, the message's ``content_masked`` choosing): client-side binding adapts
    every parameter on every call, about 10 µs each. The statuses it may move from are written
    in (``{below}``, see ``with_statuses``), not adapted as an array on every call.
    """
    quote = connection.ops.quote_name

    def column(model: Any, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    message_table = quote(Message._meta.db_table)
    message_pk = quote(Message._meta.pk.column)
    status = column(Message, "status")
    sent_at = column(Message, "sent_at")
    report_values = {
        "message": f"target.{message_pk}",
        "reported_message_id": "given.message_id",
        "number": "given.number",
        "status": "given.status",
        "raw_status": "given.raw_status",
        "source": "given.source",
        "payload": f"CASE WHEN target.{column(Message, 'content_masked')} "
        "THEN given.masked ELSE given.payload END",
        "received_at": "given.moment",
    }
    report_table = quote(StatusReport._meta.db_table)
    report_pk = quote(StatusReport._meta.pk.column)
    read = {*returned, *LEAN_FIELDS}
    locked = ", ".join(quote(field.column) for field in MESSAGE_FIELDS if field in read)
    given = ", ".join(f"%s::{kind} AS {name}" for name, kind in GIVEN)
    return (
        f"WITH given AS (SELECT {given}), "  # noqa: S608 (names from the models, values as parameters)
        f"target AS (SELECT {locked} FROM {message_table} "
        f"WHERE {column(Message, 'message_id')} = (SELECT message_id FROM given) FOR UPDATE), "
        f"moved AS (UPDATE {message_table} SET {status} = given.status, "
        f"{column(Message, 'provider_status')} = given.raw_status, "
        f"{column(Message, 'status_changed_at')} = given.moment, "
        f"{sent_at} = COALESCE({message_table}.{sent_at}, given.moment), "
        f"{column(Message, 'maybe_sent')} = '' FROM target, given "
        f"WHERE {message_table}.{message_pk} = target.{message_pk} "
        f"AND target.{status} IN {{below}} RETURNING {message_table}.{message_pk}), "
        f"stored AS (INSERT INTO {report_table} "
        f"({', '.join(quote(field.column) for field in REPORT_FIELDS)}) "
        f"SELECT {', '.join(report_values[field.name] for field in REPORT_FIELDS)} "
        f"FROM given LEFT JOIN target ON TRUE RETURNING {report_table}.{report_pk}) "
        f"SELECT stored.{report_pk}, EXISTS (SELECT 1 FROM moved), "
        f"{', '.join(f'target.{quote(field.column)}' for field in returned)} "
        "FROM stored LEFT JOIN target ON TRUE"
    )


_written_statuses: dict[tuple[str, tuple[str, ...]], str] = {}


def with_statuses(sql: str, statuses: Sequence[str]) -> str:
    """``sql`` with ``{below}`` written as the list of ``statuses`` (``IN (...)``; a condition
    that is never true for none). The statuses are the app's own names, checked to be only
    lower-case letters and underscores, so they are written as literals; cached."""
    key = (sql, tuple(statuses))
    written = _written_statuses.get(key)
    if written is None:
        if not all(re.fullmatch("[a-z_]+", status) for status in statuses):
            raise ValueError(f"Not a status name: {statuses!r}")
        listed = ", ".join(f"'{status}'" for status in statuses) or "NULL"
        written = _written_statuses.setdefault(key, sql.replace("{below}", f"({listed})"))
    return written


def placeholders(count: int) -> str:
    return f"({', '.join(['%s'] * count)})"


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + size]


def locked_messages(message_ids: Sequence[str], using: str, *, whole: bool = True) -> list[Message]:
    """The messages with ``message_ids``, their rows locked until the transaction ends (no lock
    on SQLite, which has one writer at a time anyway), in primary key order: two transactions
    locking some of the same rows cannot deadlock. Unless ``whole``, each has only
    ``LEAN_FIELDS`` (its other fields would be loaded from the database when read)."""
    connection = connections[using]
    prepared = statements(connection)
    read = prepared.reading(whole)
    size = connection.features.max_query_params or len(message_ids)
    found = []
    with connection.cursor() as cursor:
        for chunk in chunks(message_ids, size):
            sql = read.lock_prefix + placeholders(len(chunk))
            if len(chunk) > 1:
                sql += prepared.order_by_pk
            cursor.execute(sql + prepared.lock_suffix, chunk)
            found.extend(cursor.fetchall())
    return [read.message(row, using) for row in found]


def inserts_many(using: str) -> bool:
    """Whether ``insert_reports`` gives several new reports their primary keys on ``using``
    (else, as ``bulk_create`` there, only one)."""
    return bool(statements(connections[using]).returning)


def insert_reports(reports: Sequence[StatusReport], using: str) -> None:
    """INSERT ``reports`` as ``bulk_create`` would, and give each its primary key (several
    need ``inserts_many``)."""
    connection = connections[using]
    prepared = statements(connection)
    if prepared.insert_json is not None and reports:
        rows = [
            [
                _json_cell(field, getattr(report, field.attname), connection)
                for field in REPORT_FIELDS
            ]
            for report in reports
        ]
        with connection.cursor() as cursor:
            cursor.execute(prepared.insert_json, [json.dumps(rows)])
            for report, (pk,) in zip(reports, cursor.fetchall(), strict=True):
                report.pk = pk
                report._state.adding = False
                report._state.db = using
        return
    size = connection.ops.bulk_batch_size(REPORT_FIELDS, reports)
    with connection.cursor() as cursor:
        for chunk in chunks(reports, size):
            values = [
                field.get_db_prep_save(getattr(report, field.attname), connection)
                for report in chunk
                for field in REPORT_FIELDS
            ]
            rows = ", ".join([prepared.insert_row] * len(chunk))
            cursor.execute(prepared.insert_prefix + rows + prepared.returning, values)
            if prepared.returning:
                for report, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                    report.pk = pk
            elif len(chunk) == 1:
                chunk[0].pk = connection.ops.last_insert_id(
                    cursor, StatusReport._meta.db_table, StatusReport._meta.pk.column
                )
    for report in reports:
        report._state.adding = False
        report._state.db = using


def _json_cell(field: Any, value: Any, connection: BaseDatabaseWrapper) -> Any:
    """``value`` of ``field`` as ``insert_from_json`` reads it: JSON as itself, a moment as
    ISO 8601 text, anything else as the field prepares it for the database."""
    if field.get_internal_type() == "JSONField":
        return value
    prepared = field.get_db_prep_save(value, connection)
    return prepared.isoformat() if isinstance(prepared, datetime) else prepared


def advance_rows(
    pks: Sequence[int],
    status: str,
    raw_status: str,
    moment: datetime,
    below: Sequence[str],
    using: str,
) -> int:
    """The conditional move of the messages ``pks`` to a reported ``status``, from any of
    ``below``, as ``transitions.advance_many`` would write it through the ORM. Returns how
    many rows moved."""
    connection = connections[using]
    prepared = statements(connection)
    when = Message._meta.get_field("status_changed_at").get_db_prep_save(moment, connection)
    limit = connection.features.max_query_params
    size = limit - len(below) - 5 if limit else len(pks)
    moved = 0
    with connection.cursor() as cursor:
        for chunk in chunks(pks, size):
            sql = prepared.advance_prefix + placeholders(len(chunk))
            sql += prepared.advance_from + placeholders(len(below))
            cursor.execute(sql, [status, raw_status, when, when, "", *chunk, *below])
            moved += cursor.rowcount
    return moved


def store_and_advance(
    report: StatusReport,
    masked_payload: Any,
    below: Sequence[str],
    using: str,
    *,
    whole: bool = True,
) -> tuple[Message | None, bool]:
    """INSERT ``report`` (unsaved, its message not looked up) and move its message to the
    report's status if it is in one of ``below``, in one statement: outside a transaction it
    is its own, with no BEGIN or COMMIT to wait for. Gives ``report`` its primary key; returns
    the message as it was before the move (None for an orphan) and whether it moved. Unless
    ``whole``, the message has only ``LEAN_FIELDS`` (for callers that give it to no receiver;
    its other fields would be loaded from the database when read)."""
    connection = connections[using]
    payload = StatusReport._meta.get_field("payload")
    given = {
        "message_id": report.reported_message_id,
        "status": report.status,
        "raw_status": report.raw_status,
        "moment": StatusReport._meta.get_field("received_at").get_db_prep_save(
            report.received_at, connection
        ),
        "number": report.number,
        "source": report.source,
        "masked": payload.get_db_prep_save(masked_payload, connection),
        "payload": payload.get_db_prep_save(report.payload, connection),
    }
    read = statements(connection).reading(whole)
    with connection.cursor() as cursor:
        sql = with_statuses(read.store_and_advance, below)  # type: ignore[arg-type]
        cursor.execute(sql, [given[name] for name, _ in GIVEN])
        report.pk, moved, *row = cursor.fetchone()
    report._state.adding = False
    report._state.db = using
    if row[0] is None:
        return None, moved
    return read.message(row, using), moved


def claim_queued(
    picked: tuple[str, Sequence[Any]],
    changes: dict[str, Any],
    using: str,
) -> list[Message]:
    """PostgreSQL: the queued rows the locking SELECT ``picked`` (its SQL and parameters, ids
    only) gives, moved to ``changes`` in one UPDATE and returned as it left them (in no order).
    ``attempts`` counts one more. Only the rows still queued move: the SELECT skips rows others
    hold, so a row it returns is still queued here."""
    connection = connections[using]
    quote = connection.ops.quote_name
    attempts = quote(Message._meta.get_field("attempts").column)
    assignments = [f"{attempts} = {attempts} + 1"]
    values = []
    for name, value in changes.items():
        field = Message._meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        values.append(field.get_db_prep_save(value, connection))
    select, params = picked
    sql = (
        f"UPDATE {quote(Message._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {quote(Message._meta.pk.column)} IN ({select}) "
        f"RETURNING {', '.join(quote(field.column) for field in MESSAGE_FIELDS)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *params])
        rows = cursor.fetchall()
    read = statements(connection).whole
    return [read.message(row, using) for row in rows]


def look_at_queue(
    moment: datetime, stale_before: datetime, due_limit: int, using: str
) -> tuple[int, bool, bool]:
    """In one statement: how many queued messages are due at ``moment`` (counted no further
    than ``due_limit``), whether any is ``sending`` under a claim taken before
    ``stale_before``, and whether any ``unknown`` one is due."""
    connection = connections[using]
    field = Message._meta.get_field("next_attempt_at")
    now = field.get_db_prep_value(moment, connection)
    stale = field.get_db_prep_value(stale_before, connection)
    parameters = [Status.QUEUED, now, due_limit, Status.SENDING, stale, Status.UNKNOWN, now]
    with connection.cursor() as cursor:
        cursor.execute(statements(connection).look, parameters)
        due, stale_claims, unknown_due = cursor.fetchone()
    return int(due), bool(stale_claims), bool(unknown_due)
