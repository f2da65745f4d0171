"""Read-only admin pages for the abuse limits and verification codes.

The admin package imports this module, which registers them with the default admin site.
Neither page can show a code: only its hash is stored, and the hash is not displayed.
"""

from __future__ import annotations

from django.contrib import admin

from django_zhenzi.admin.common import ReadOnlyModelAdmin, time_column
from django_zhenzi.models import RateLimitRefusal, VerificationCode

CSS = {"all": ["django_zhenzi/admin.css"]}


@admin.register(RateLimitRefusal)
class RateLimitRefusalAdmin(ReadOnlyModelAdmin):
    """How many requests each limit refused, per subject and hour: where an attack came from."""

    list_display = ("hour_column", "limit", "subject", "count", "last_refused_at_column")
    list_filter = ("limit", "hour")
    search_fields = ("subject",)
    date_hierarchy = "hour"
    fields = ("hour", "limit", "subject", "count", "last_refused_at")
    readonly_fields = fields

    hour_column = time_column(RateLimitRefusal, "hour")
    last_refused_at_column = time_column(RateLimitRefusal, "last_refused_at")

    class Media:
        css = CSS


@admin.register(VerificationCode)
class VerificationCodeAdmin(ReadOnlyModelAdmin):
    """Codes sent, by number and purpose, with their state and tries (never the code)."""

    list_display = (
        "created_at_column",
        "number",
        "purpose",
        "state",
        "tries",
        "expires_at_column",
        "client_ip",
    )
    list_filter = ("purpose", "state")
    search_fields = ("number",)
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "number",
        "purpose",
        "state",
        "tries",
        "expires_at",
        "client_ip",
        "used_at",
        "sms",
    )
    readonly_fields = fields

    created_at_column = time_column(VerificationCode, "created_at")
    expires_at_column = time_column(VerificationCode, "expires_at")

    class Media:
        css = CSS
