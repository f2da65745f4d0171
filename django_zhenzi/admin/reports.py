"""Delivery reports in the admin: their list, and the read-only inline on a message's page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from django_zhenzi.admin.base import ReadOnlyAdminMixin, ReadOnlyModelAdmin
from django_zhenzi.admin.display import clipped, status_badge, time_column
from django_zhenzi.admin.pagination import EstimatedCountPaginator
from django_zhenzi.models import StatusReport

#: Either lets a user see messages, and so their reports.
VIEW_MESSAGE_PERMISSIONS = ("django_zhenzi.view_message", "django_zhenzi.change_message")


class StatusReportInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A message's reports, read-only, on its page."""

    model = StatusReport
    extra = 0
    can_delete = False
    show_change_link = False
    fields = ("received_at_column", "source", "status", "raw_status", "number", "payload")
    readonly_fields = fields
    ordering = ("received_at", "id")

    received_at_column = time_column(StatusReport, "received_at")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The reports belong to the message: whoever may see it may see them.
        return any(request.user.has_perm(name) for name in VIEW_MESSAGE_PERMISSIONS)


class OrphanFilter(admin.SimpleListFilter):
    """Reports whose messageId matches no message (yet)."""

    title = _("orphan")
    parameter_name = "orphan"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StatusReport]
    ) -> QuerySet[StatusReport]:
        if self.value() == "yes":
            return queryset.filter(message__isnull=True)
        if self.value() == "no":
            return queryset.filter(message__isnull=False)
        return queryset


@admin.register(StatusReport)
class StatusReportAdmin(ReadOnlyModelAdmin):
    """Every delivery report as received, read-only; orphans are easy to find."""

    list_display = (
        "received_at_column",
        "reported_message_id_column",
        "message_link",
        "number",
        "status_label",
        "source",
    )
    list_filter = (
        OrphanFilter,
        "status",
        "source",
        ("received_at", admin.DateFieldListFilter),
    )
    search_fields = ("reported_message_id__exact", "number__contains")
    search_help_text = _("Search by complete messageId or phone number.")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "reported_message_id",
        "message",
        "number",
        "status",
        "raw_status",
        "source",
        "received_at_column",
        "payload",
    )
    readonly_fields = fields

    received_at_column = time_column(StatusReport, "received_at")

    @admin.display(
        description=StatusReport._meta.get_field("reported_message_id").verbose_name,
        ordering="reported_message_id",
    )
    def reported_message_id_column(self, report: StatusReport) -> SafeString:
        return clipped(report.reported_message_id)

    @admin.display(description=_("message"), ordering="message")
    def message_link(self, report: StatusReport) -> SafeString:
        """A link to the report's message, or a mark saying it has none (yet)."""
        if report.message_id is None:
            return format_html('<span class="zhenzi-orphan">{}</span>', _("orphan"))
        url = reverse(
            f"{self.admin_site.name}:django_zhenzi_message_change", args=[report.message_id]
        )
        return format_html('<a href="{}">#{}</a>', url, report.message_id)

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, report: StatusReport) -> SafeString:
        """The status the report was understood as, beside the provider's own word."""
        badge = status_badge(report.status) if report.status else ""
        return format_html('{} <span class="zhenzi-raw">{}</span>', badge, report.raw_status)
