"""The per-status summary above the message list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from django_zhenzi import services
from django_zhenzi.admin.display import status_badge
from django_zhenzi.models import Status


@dataclass(frozen=True)
class SummaryCell:
    count: int
    url: str


@dataclass(frozen=True)
class SummaryRow:
    label: str
    cells: list[SummaryCell]
    total: SummaryCell


class StatusSummary:
    """Counts per status for the last 24 hours and 7 days, computed only when the page shows
    them: one GROUP BY query per window."""

    WINDOWS = ((timedelta(hours=24), _("Last 24 hours")), (timedelta(days=7), _("Last 7 days")))

    def __init__(self, changelist_url: str) -> None:
        self.changelist_url = changelist_url
        self.statuses = [(status.value, status_badge(status.value)) for status in Status]

    @cached_property
    def rows(self) -> list[SummaryRow]:
        moment = timezone.now().replace(microsecond=0)
        rows = []
        for window, label in self.WINDOWS:
            since = moment - window
            counts = services.status_counts(since)
            cells = [
                SummaryCell(counts.get(status, 0), self.link(since, status))
                for status, _badge in self.statuses
            ]
            total = SummaryCell(sum(counts.values()), self.link(since, None))
            rows.append(SummaryRow(str(label), cells, total))
        return rows

    def link(self, since: datetime, status: str | None) -> str:
        query = {"created_at__gte": timezone.localtime(since).isoformat()}
        if status is not None:
            query["status__exact"] = status
        return f"{self.changelist_url}?{urlencode(query)}"
