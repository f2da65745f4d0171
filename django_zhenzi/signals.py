"""Signals sent as messages move through their life.

- ``message_sent(sender=Message, message=...)``: the provider accepted it (code 0, or found it when
  reconciling).
- ``message_failed(sender=Message, message=..., reason=..., kind=..., params=...)``: it will not
  be sent. ``reason`` says why in the active language; ``kind`` and ``params`` are the same as
  data (``message.error_kind`` and ``message.error_params``, see ``django_zhenzi.reasons``).
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
