"""Read-only admin pages for the abuse limits and verification codes.

The admin package imports this module, which registers them with the default admin site.
Neither page can show a code: only its hash is stored, and the hash is not displayed.
"""

from __future__ import annotations

from django.contrib import admin

from django_zhenzi.admin.common import ReadOnlyModelAdmin
from django_zhenzi.models import RateLimitRefusal, VerificationCode


@admin.register(RateLimitRefusal)
class RateLimitRefusalAdmin(ReadOnlyModelAdmin):
    """How many requests each limit refused, per subject and hour: where an attack came from."""

    list_display = ("hour", "limit", "subject", "count", "last_refused_at")
    list_filter = ("limit", "hour")
    search_fields = ("subject",)
    date_hierarchy = "hour"
    fields = list_display
    readonly_fields = list_display


@admin.register(VerificationCode)
class VerificationCodeAdmin(ReadOnlyModelAdmin):
    """Codes sent, by number and purpose, with their state and tries (never the code)."""

    list_display = ("created_at", "number", "purpose", "state", "tries", "expires_at", "client_ip")
    list_filter = ("purpose", "state")
    search_fields = ("number",)
    date_hierarchy = "created_at"
    fields = (*list_display, "used_at", "sms")
    readonly_fields = fields
