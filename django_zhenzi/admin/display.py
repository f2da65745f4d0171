"""How the admin pages show values: status badges, compact times, clipped text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_zhenzi.models import Status

#: How the lists show a moment: compact, to the second, in the current time zone.
COMPACT_TIME_FORMAT = "Y-m-d H:i:s"


def status_badge(status: str) -> SafeString:
    """A message status as a coloured label."""
    try:
        label = Status(status).label
    except ValueError:
        label = status
    return format_html('<span class="zhenzi-badge zhenzi-status-{}">{}</span>', status, label)


def compact_time(moment: datetime | None) -> str:
    """``moment`` as ``2026-05-01 14:03:27`` in the current time zone, the same in every
    language: narrow enough for a list column, precise to the second."""
    if moment is None:
        return ""
    return date_format(timezone.template_localtime(moment), COMPACT_TIME_FORMAT)


def time_column(model: type[Model], field_name: str) -> Callable[[Any, Model], SafeString]:
    """A list column (or read-only field of a page) showing the date-time field ``field_name``
    as ``compact_time`` does, headed and sorted like the field itself. A narrow column breaks it
    between the date and the time, never inside the date."""
    field = model._meta.get_field(field_name)

    @admin.display(description=field.verbose_name, ordering=field_name)
    def column(model_admin: Any, obj: Model) -> SafeString:
        moment = getattr(obj, field_name)
        if moment is None:
            # A page shows a callable's None as "None": give the admin's empty value instead.
            return model_admin.get_empty_value_display()
        date, _space, time = compact_time(moment).partition(" ")
        return format_html('<span class="zhenzi-date">{}</span> {}', date, time)

    column.__name__ = f"{field_name}_column"
    return column


def clipped(text: str, *, title: str | None = None) -> SafeString:
    """``text`` cut by the stylesheet with an ellipsis where its column ends (after two lines,
    or one for IDs); the whole of it (or ``title``) shows on hover."""
    return format_html(
        '<span class="zhenzi-clip" title="{}">{}</span>', text if title is None else title, text
    )
