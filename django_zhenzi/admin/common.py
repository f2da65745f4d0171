"""Pieces the admin pages share: status badges, error explanations and a paginator for big
tables."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import ZhenziAPIError, ZhenziError, ZhenziTransportError, explain
from django_zhenzi.models import Status

#: An unfiltered PostgreSQL table bigger than this is not counted: the planner's estimate of
#: its size (``pg_class.reltuples``) is used instead.
ESTIMATE_ABOVE = 100_000


def chinese_active() -> bool:
    """Whether the page is being rendered in Chinese (zh-hans, or any other zh variant)."""
    return (get_language() or "").lower().startswith("zh")


def explain_code(code: int) -> tuple[str, str]:
    """A provider error code's meaning and hint, in Chinese when the page is."""
    explanation = explain(code)
    if chinese_active():
        return explanation.meaning_zh, explanation.hint_zh
    return explanation.meaning, explanation.hint


def describe_error(error: Exception) -> str:
    """What went wrong talking to Zhenzi, for an operator. Error texts never hold the app
    secret: the client removes it from everything it raises."""
    if isinstance(error, ZhenziAPIError):
        meaning, hint = explain_code(error.code)
        return _("Zhenzi refused the request with error %(code)s: %(meaning)s. %(hint)s") % {
            "code": error.code,
            "meaning": meaning,
            "hint": hint,
        }
    if isinstance(error, OperationNotSupported):
        return _("The configured SMS backend has no Zhenzi account to ask (%(detail)s).") % {
            "detail": error
        }
    if isinstance(error, ZhenziTransportError):
        return _("Zhenzi could not be reached or gave no usable answer: %(detail)s") % {
            "detail": error
        }
    if isinstance(error, ImproperlyConfigured):
        return _("Zhenzi is not configured: %(detail)s") % {"detail": error}
    if isinstance(error, ZhenziError):
        return str(error)
    raise TypeError(f"not an error about Zhenzi: {type(error).__name__}")


def status_badge(status: str) -> SafeString:
    """A message status as a coloured label."""
    try:
        label = Status(status).label
    except ValueError:
        label = status
    return format_html('<span class="zhenzi-badge zhenzi-status-{}">{}</span>', status, label)


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


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows the app writes itself: viewable, never added or edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
