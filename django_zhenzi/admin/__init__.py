"""The Django admin of django_zhenzi: message history, status reports, balance,
send form, verification codes and rate-limit refusals.

Importing this package registers the model admins with the default admin site.
"""

from django_zhenzi.admin.balance import BalanceSnapshotAdmin
from django_zhenzi.admin.history import MessageAdmin, StatusReportAdmin
from django_zhenzi.admin.limits import RateLimitRefusalAdmin, VerificationCodeAdmin

__all__ = [
    "BalanceSnapshotAdmin",
    "MessageAdmin",
    "RateLimitRefusalAdmin",
    "StatusReportAdmin",
    "VerificationCodeAdmin",
]
