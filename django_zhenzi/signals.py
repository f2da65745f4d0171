"""Signals sent as messages move through their life.

- ``message_sent(sender=Message, message=...)``: the provider accepted it (code 0, or found it when
  reconciling).
- ``message_failed(sender=Message, message=..., reason=...)``: it will not be sent.
- ``status_changed(sender=Message, message=..., old_status=..., new_status=...)``: once per real
  change of status made by a send's outcome, a reconciliation or a report. Claiming a batch
  (``queued`` to ``sending``) and expiring a dead worker's claims are bulk updates: no signal.
- ``balance_low(sender=BalanceSnapshot, balance=..., threshold=...)``: a balance read found the
  account below ``LOW_BALANCE_THRESHOLD`` while the last one was not: once per crossing, in the
  one process whose read crossed it (the same moment ``ADMINS`` get their email).
"""

from django.dispatch import Signal

message_sent = Signal()
message_failed = Signal()
status_changed = Signal()
balance_low = Signal()
