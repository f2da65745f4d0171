"""The abuse limits' refusals in the admin, read-only: where an attack came from."""

from __future__ import annotations

from django.contrib import admin

from django_zhenzi.admin.base import ReadOnlyModelAdmin
from django_zhenzi.admin.display import time_column
from django_zhenzi.models import RateLimitRefusal


@admin.register(RateLimitRefusal)
class RateLimitRefusalAdmin(ReadOnlyModelAdmin):
    """How many requests each limit refused, per subject and hour: where an attack came from."""

    list_display = ("hour_column", "limit", "subject", "count", "last_refused_at_column")
    list_filter = ("limit", "hour")
    search_fields = ("subject",)
    date_hierarchy = "hour"
    fields = ("hour_column", "limit", "subject", "count", "last_refused_at_column")
    readonly_fields = fields

    hour_column = time_column(RateLimitRefusal, "hour")
    last_refused_at_column = time_column(RateLimitRefusal, "last_refused_at")
