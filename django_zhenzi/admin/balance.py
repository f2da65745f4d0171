"""The balance page: the live balance (cached briefly), its history as a chart, and a warning
when it runs low. It is the changelist of BalanceSnapshot, so it sits in the app's section of
the admin index, and it needs the ``django_zhenzi.view_balance`` permission."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from django_zhenzi import services
from django_zhenzi.admin.base import ReadOnlyModelAdmin
from django_zhenzi.admin.chart import balance_chart
from django_zhenzi.admin.display import compact_time
from django_zhenzi.admin.errors import describe_error
from django_zhenzi.client import ZhenziError
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import BalanceSnapshot

VIEW_BALANCE_PERMISSION = "django_zhenzi.view_balance"
#: The newest snapshots drawn in the chart.
CHART_POINTS = 500
#: The newest snapshots listed under the chart.
RECENT_SNAPSHOTS = 10


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(ReadOnlyModelAdmin):
    """No list, no forms: one page, the balance."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_BALANCE_PERMISSION)

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.balance_view), name=name)]

    def balance_view(self, request: HttpRequest) -> HttpResponse:
        """GET shows the balance (from the cache when fresh); POST asks the provider now."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        reading = error = None
        try:
            reading = services.cached_balance(refresh=request.method == "POST")
        except (ZhenziError, ImproperlyConfigured) as caught:
            error = describe_error(caught)
        snapshots = list(BalanceSnapshot.objects.order_by("-recorded_at", "-id")[:CHART_POINTS])
        threshold = int(zhenzi_settings.LOW_BALANCE_THRESHOLD)
        known = reading.balance if reading is not None else None
        if known is None and snapshots:
            known = snapshots[0].balance
        context = {
            **self.admin_site.each_context(request),
            "title": _("Balance"),
            "opts": self.opts,
            "media": self.media,
            "reading": reading,
            "read_at": compact_time(reading.read_at) if reading is not None else "",
            "error": error,
            "last_snapshot": snapshots[0] if snapshots and reading is None else None,
            "last_recorded_at": compact_time(snapshots[0].recorded_at) if snapshots else "",
            "threshold": threshold,
            "low": known is not None and known < threshold,
            "chart": balance_chart(
                [(snapshot.recorded_at, snapshot.balance) for snapshot in reversed(snapshots)],
                threshold=threshold,
            ),
            "recent": [
                (compact_time(snapshot.recorded_at), snapshot.balance)
                for snapshot in snapshots[:RECENT_SNAPSHOTS]
            ],
            "cache_seconds": zhenzi_settings.BALANCE_CACHE_SECONDS,
        }
        return TemplateResponse(request, "django_zhenzi/admin/balance.html", context)
