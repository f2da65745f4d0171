"""Figures for dashboards (``/zhenzi/metrics.json``): the admin's per-status counts, the queue,
``unknown`` messages, the latest reports and balance. Reads the database only, a few small
queries; the shape is documented in docs/operations.rst ("Metrics")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min

from django_zhenzi.models import BalanceSnapshot, Message, Status, StatusReport
from django_zhenzi.services import clock
from django_zhenzi.services.health import last_callback_report_at
from django_zhenzi.services.maintenance import status_counts

#: The windows of the per-status counts, by their key in the answer (as in the admin's summary).
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


def metrics(*, balance: bool = True) -> dict[str, Any]:
    """The figures as a JSON-ready dict; every status appears in every window (0 when none).
    ``balance`` false leaves the balance out (for readers not allowed to see it)."""
    moment = clock.now()
    statuses = {}
    for key, window in WINDOWS.items():
        counts = status_counts(moment - window)
        statuses[key] = {status.value: counts.get(status.value, 0) for status in Status}
    queued = Message.objects.filter(status=Status.QUEUED)
    due = queued.filter(next_attempt_at__lte=moment).aggregate(
        count=Count("id"), oldest=Min("next_attempt_at")
    )
    last_report = StatusReport.objects.aggregate(last=Max("received_at"))["last"]
    figures: dict[str, Any] = {
        "generated_at": moment.isoformat(),
        "statuses": statuses,
        "queue": {
            "queued": queued.count(),
            "due": due["count"],
            "oldest_due_seconds": (
                int((moment - due["oldest"]).total_seconds()) if due["oldest"] else None
            ),
        },
        "unknown": Message.objects.filter(status=Status.UNKNOWN).count(),
        "last_report_at": _iso(last_report),
        "last_callback_report_at": _iso(last_callback_report_at()),
    }
    if balance:
        snapshot = BalanceSnapshot.objects.order_by("-recorded_at").first()
        figures["balance"] = (
            {"balance": snapshot.balance, "recorded_at": snapshot.recorded_at.isoformat()}
            if snapshot
            else None
        )
    return figures


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
