"""``zhenzi_health``'s checks as django-health-check (4.x) checks: ``pip install
django-zhenzi[health]`` and add ``CHECKS`` to the view's::

    from health_check.views import HealthCheckView
    from django_zhenzi.contrib.health_check import CHECKS as ZHENZI_CHECKS

    path("ht/", HealthCheckView.as_view(checks=[*HealthCheckView.checks, *ZHENZI_CHECKS]))

A problem is raised as the package's ServiceUnavailable (the site cannot send) or ServiceWarning
(it still sends, someone should look); its text is ``services.health``'s message.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from django.db import connections
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.services import clock, health

#: Problems after which the site still sends: reported as warnings.
WARNINGS = frozenset({"balance_low", "no_reports"})


class _ZhenziCheck(HealthCheck):
    """Raises the first problem its ``problems`` finds."""

    def problems(self) -> list[health.Problem]:
        raise NotImplementedError

    def run(self) -> None:
        # The view runs a sync check in an executor thread, where no request_finished closes
        # the database connections the queries opened: close them here, or they pile up.
        try:
            problems = self.problems()
        finally:
            connections.close_all()
        for problem in problems:
            error = ServiceWarning if problem.id in WARNINGS else ServiceUnavailable
            raise error(problem.message)


@dataclasses.dataclass
class ZhenziProvider(_ZhenziCheck):
    """Zhenzi answers for the account and its balance is above LOW_BALANCE_THRESHOLD (asks the
    provider at most once per BALANCE_CACHE_SECONDS)."""

    @property
    def timeout(self) -> timedelta:  # type: ignore[override]
        return timedelta(seconds=float(zhenzi_settings.TIMEOUT) + 1)

    def problems(self) -> list[health.Problem]:
        return health.provider_checks()


@dataclasses.dataclass
class ZhenziQueue(_ZhenziCheck):
    """Workers take due queued messages and settle ``unknown`` ones."""

    def problems(self) -> list[health.Problem]:
        moment = clock.now()
        return health.check_queue(moment) + health.check_unknown(moment)


@dataclasses.dataclass
class ZhenziReports(_ZhenziCheck):
    """Delivery reports arrive through the callback."""

    def problems(self) -> list[health.Problem]:
        return health.check_reports(clock.now())


#: Every check, as dotted paths for ``HealthCheckView(checks=...)``.
CHECKS = tuple(
    f"{__name__}.{check.__name__}" for check in (ZhenziProvider, ZhenziQueue, ZhenziReports)
)
