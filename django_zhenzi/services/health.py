"""Is the site healthy? Each check returns the problems it finds, as data: ``zhenzi_health``
prints them, the django-health-check plugins raise them, the admin's message list shows them.

Check ids are stable (monitoring matches on them; docs/operations.rst lists them):

- ``provider``: the balance cannot be read: the provider is unreachable, refuses the account, or
  the settings are wrong.
- ``balance_low``: the balance is below ``LOW_BALANCE_THRESHOLD``.
- ``queue_stalled``: due queued messages have waited more than ``QUEUE_ALERT_AFTER`` seconds: no
  worker is taking the queue.
- ``unknown_stuck``: messages have stayed ``unknown`` longer than ``RECONCILE_SETTLE`` plus
  ``CLAIM_TIMEOUT``: nothing is reconciling them.
- ``no_reports``: messages sent more than ``REPORT_ALERT_AFTER`` seconds ago still wait for a
  report and no report has come through the callback since: the callback is not reaching the site.

The ``local`` checks only read the database (cheap: fit for the admin and a probe); ``provider``
asks Zhenzi for the balance (through the balance cache, like the admin's balance page).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Max, Min
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import ZhenziError
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import BalanceSnapshot, Message, Status, StatusReport
from django_zhenzi.reasons import Reason
from django_zhenzi.services import clock
from django_zhenzi.services.balance import cached_balance

#: Every check id, in the order the checks run.
CHECK_IDS = ("provider", "balance_low", "queue_stalled", "unknown_stuck", "no_reports")


@dataclass(frozen=True)
class Problem:
    """One thing wrong: a stable ``id``, a one-line ``message`` in the active language, and the
    figures behind it (``details``: JSON-ready numbers and ISO times)."""

    id: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(*, provider: bool = True) -> list[Problem]:
    """Every check; with ``provider`` false, only the database is read and the balance check
    uses the latest recorded balance (if any)."""
    if provider:
        return provider_checks() + local_checks()
    balance = _recorded_balance()
    return (check_balance(balance) if balance is not None else []) + local_checks()


def provider_checks() -> list[Problem]:
    """``provider`` when the balance cannot be read, else ``balance_low`` when it is low."""
    balance, problem = _live_balance()
    if problem is not None:
        return [problem]
    return check_balance(balance) if balance is not None else []


def local_checks() -> list[Problem]:
    """The checks that only read the database: queue, unknown, reports."""
    moment = clock.now()
    return check_queue(moment) + check_unknown(moment) + check_reports(moment)


def _live_balance() -> tuple[int | None, Problem | None]:
    try:
        return cached_balance().balance, None
    except OperationNotSupported:
        return None, None  # console, locmem, dummy: no account to check
    except (ZhenziError, ImproperlyConfigured) as error:
        # A ZhenziError renders its kind: the code, its meaning and a hint, never the secret.
        detail = Reason.from_error(error).render() if isinstance(error, ZhenziError) else error
        message = _("Cannot read the balance from Zhenzi: {error}").format(error=detail)
        return None, Problem("provider", message, {"error": type(error).__name__})


def _recorded_balance() -> int | None:
    latest = BalanceSnapshot.objects.order_by("-recorded_at").values_list("balance", flat=True)
    return latest.first()


def check_balance(balance: int) -> list[Problem]:
    threshold = zhenzi_settings.LOW_BALANCE_THRESHOLD
    if balance >= threshold:
        return []
    message = _(
        "The balance is low: {balance} SMS left, below {threshold}. Top it up in the Zhenzi "
        "console."
    ).format(balance=balance, threshold=threshold)
    return [Problem("balance_low", message, {"balance": balance, "threshold": threshold})]


def check_queue(moment: datetime) -> list[Problem]:
    after = float(zhenzi_settings.QUEUE_ALERT_AFTER)
    waiting = Message.objects.filter(
        status=Status.QUEUED, next_attempt_at__lte=moment - timedelta(seconds=after)
    ).aggregate(count=Count("id"), oldest=Min("next_attempt_at"))
    if not waiting["count"]:
        return []
    age = int((moment - waiting["oldest"]).total_seconds())
    message = ngettext(
        "{count} queued message has been due for more than {after:g} seconds (the oldest for "
        "{age} seconds): {question}",
        "{count} queued messages have been due for more than {after:g} seconds (the oldest for "
        "{age} seconds): {question}",
        waiting["count"],
    ).format(count=waiting["count"], after=after, age=age, question=who_takes_the_queue())
    details = {"count": waiting["count"], "oldest_due_seconds": age}
    return [Problem("queue_stalled", message, details)]


def who_takes_the_queue() -> str:
    """The question a stalled queue asks, for what ``DISPATCH`` says sends it."""
    dispatch = zhenzi_settings.DISPATCH
    if dispatch == "celery":
        return _("are Celery workers running, and Celery beat with the django_zhenzi.sweep task?")
    if dispatch == "tasks":
        return _(
            "is a worker of the Tasks backend running, and the sweep scheduled (cron or a "
            "scheduler)?"
        )
    return _("is a worker (zhenzi_send_queued --loop) running?")


def check_unknown(moment: datetime) -> list[Problem]:
    after = float(zhenzi_settings.RECONCILE_SETTLE) + float(zhenzi_settings.CLAIM_TIMEOUT)
    stuck = Message.objects.filter(
        status=Status.UNKNOWN, status_changed_at__lte=moment - timedelta(seconds=after)
    ).count()
    if not stuck:
        return []
    message = ngettext(
        "{count} message has been in 'unknown' for more than {after:g} seconds: is a worker "
        "running to reconcile it?",
        "{count} messages have been in 'unknown' for more than {after:g} seconds: is a worker "
        "running to reconcile them?",
        stuck,
    ).format(count=stuck, after=after)
    return [Problem("unknown_stuck", message, {"count": stuck})]


def check_reports(moment: datetime) -> list[Problem]:
    after = float(zhenzi_settings.REPORT_ALERT_AFTER)
    last_report = last_callback_report_at()
    waiting = Message.objects.filter(
        status=Status.SENT, sent_at__lte=moment - timedelta(seconds=after)
    )
    if last_report is not None:
        waiting = waiting.filter(sent_at__gt=last_report)
    count = waiting.count()
    if not count:
        return []
    message = ngettext(
        "{count} message sent more than {after:g} seconds ago still has no delivery report, "
        "and no report has come through the callback since: check the callback URL in the "
        "Zhenzi console and ZHENZI['CALLBACK_TOKEN'].",
        "{count} messages sent more than {after:g} seconds ago still have no delivery report, "
        "and no report has come through the callback since: check the callback URL in the "
        "Zhenzi console and ZHENZI['CALLBACK_TOKEN'].",
        count,
    ).format(count=count, after=after)
    details = {"count": count, "last_callback_report_at": _iso(last_report)}
    return [Problem("no_reports", message, details)]


def last_callback_report_at() -> datetime | None:
    """When the latest delivery report came through the callback (None: never)."""
    reports = StatusReport.objects.filter(source=StatusReport.Source.CALLBACK)
    return reports.aggregate(last=Max("received_at"))["last"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
