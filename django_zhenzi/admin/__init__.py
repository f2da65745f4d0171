"""The Django admin of django_zhenzi: message history, status reports, balance,
send form, verification codes and rate-limit refusals.

Importing this package registers the model admins with the default admin site.
"""

from django_zhenzi.admin.balance import BalanceSnapshotAdmin
from django_zhenzi.admin.codes import VerificationCodeAdmin
from django_zhenzi.admin.limits import RateLimitRefusalAdmin
from django_zhenzi.admin.messages import MessageAdmin
from django_zhenzi.admin.reports import StatusReportAdmin

__all__ = [
    "BalanceSnapshotAdmin",
    "MessageAdmin",
    "RateLimitRefusalAdmin",
    "StatusReportAdmin",
    "VerificationCodeAdmin",
]
