"""Paging big tables: PostgreSQL's estimate instead of a full count of an unfiltered list."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

#: An unfiltered PostgreSQL table bigger than this is not counted: the planner's estimate of
#: its size (``pg_class.reltuples``) is used instead.
ESTIMATE_ABOVE = 100_000


def estimated_count(object_list: Any) -> int | None:
    """The planner's row estimate for an unfiltered queryset over a big PostgreSQL table, or
    None where an exact count is wanted (other databases, filtered lists, small tables)."""
    if not isinstance(object_list, QuerySet):
        return None
    query = object_list.query
    if query.where or query.combinator or query.distinct or query.is_sliced:
        return None
    connection = connections[object_list.db]
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(object_list.model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < ESTIMATE_ABOVE:
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):
    """A paginator that spares a huge unfiltered table its ``COUNT(*)`` (PostgreSQL only).

    The estimate is close, not exact: the last page may come out short or empty. Filtered and
    searched lists are always counted exactly.
    """

    @cached_property
    def count(self) -> int:
        estimate = estimated_count(self.object_list)
        return estimate if estimate is not None else super().count
