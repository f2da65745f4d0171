"""The use cases, one module per job. Every entry point (the Python API, the commands, the
admin, the views) calls these; nothing else talks to the backend.

- ``content``: validating what a send carries; ``compose``: creating messages (and send-now).
- ``claims``: which sender may act on a message; ``dispatch``: sending a claimed batch and
  recording each outcome; ``policy``: what each outcome does (retry, pause, fail, reconcile).
- ``transitions``: every status change; ``reconcile``: settling ambiguous outcomes.
- ``worker``: the queue worker loop; ``reports``: delivery reports and polling;
  ``combined_writes``: the reports of concurrent callback requests written together.
- ``balance``: the account's balance; ``maintenance``: the admin's and commands' tools.
- ``clock``: the one source of "now" (tests move it).

The rules they keep are DESIGN.md's "Message life" and the documentation's delivery policy
(docs/delivery.rst).
"""

from django_zhenzi.services import clock
from django_zhenzi.services.balance import (
    BalanceReading,
    balance_cache_key,
    cached_balance,
    read_balance,
)
from django_zhenzi.services.claims import (
    BatchClaim,
    claim,
    claim_due,
    claim_unknown,
    expire_stale_claims,
    new_claim_token,
    release,
)
from django_zhenzi.services.combined_writes import apply_reports_combined
from django_zhenzi.services.compose import create_messages, send_code_message
from django_zhenzi.services.content import (
    Content,
    Recipients,
    as_number_list,
    sort_recipients,
    validate_content,
)
from django_zhenzi.services.dispatch import (
    MASKED_NOT_RESENT,
    PassResult,
    SentBuffer,
    send_batch,
    send_claimed,
    send_now,
)
from django_zhenzi.services.maintenance import (
    CleanupResult,
    MessageLookup,
    RequeueResult,
    delete_history_older_than,
    look_up_message,
    requeue_failed,
    status_counts,
    validate_backend_settings,
)
from django_zhenzi.services.policy import Action, decide, retry_delay
from django_zhenzi.services.reconcile import reconcile
from django_zhenzi.services.reports import (
    RefreshResult,
    ReportData,
    apply_polled_record,
    apply_report,
    apply_reports,
    link_orphan_reports,
    refresh_statuses,
    sync_statuses,
)
from django_zhenzi.services.worker import account_works, run_workers, work_batch

__all__ = [
    "MASKED_NOT_RESENT",
    "Action",
    "BalanceReading",
    "BatchClaim",
    "CleanupResult",
    "Content",
    "MessageLookup",
    "PassResult",
    "Recipients",
    "RefreshResult",
    "ReportData",
    "RequeueResult",
    "SentBuffer",
    "account_works",
    "apply_polled_record",
    "apply_report",
    "apply_reports",
    "apply_reports_combined",
    "as_number_list",
    "balance_cache_key",
    "cached_balance",
    "claim",
    "claim_due",
    "claim_unknown",
    "clock",
    "create_messages",
    "decide",
    "delete_history_older_than",
    "expire_stale_claims",
    "link_orphan_reports",
    "look_up_message",
    "new_claim_token",
    "read_balance",
    "reconcile",
    "refresh_statuses",
    "release",
    "requeue_failed",
    "retry_delay",
    "run_workers",
    "send_batch",
    "send_claimed",
    "send_code_message",
    "send_now",
    "sort_recipients",
    "status_counts",
    "sync_statuses",
    "validate_backend_settings",
    "validate_content",
    "work_batch",
]
