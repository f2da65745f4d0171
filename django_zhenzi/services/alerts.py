"""Alerts for operators: one email to ``ADMINS`` (and one ``balance_low`` signal) each time the
balance crosses below ``LOW_BALANCE_THRESHOLD``, re-armed when it crosses back. A receiver
that raises is logged and never stops the reader.

Every process that reads the balance calls ``balance_read``; the state lives in one
``AlertState`` row, changed by a conditional update, so of many workers reading a low balance at
once exactly one sends the email.
"""

from __future__ import annotations

import logging

from django.core.mail import mail_admins
from django.utils.translation import gettext as _

from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import AlertState, BalanceSnapshot
from django_zhenzi.services import clock
from django_zhenzi.services.transitions import serialized_writes
from django_zhenzi.signals import balance_low

logger = logging.getLogger("django_zhenzi")

#: The ``AlertState`` row of the low-balance alert.
BALANCE_LOW = "balance_low"


def balance_read(balance: int) -> bool:
    """Record a balance just read from the provider: raise the low-balance alert when it
    crosses below the threshold (email ``ADMINS``, send ``balance_low``), re-arm it when it is
    back at or above. True if this call raised the alert."""
    threshold = zhenzi_settings.LOW_BALANCE_THRESHOLD
    low = balance < threshold
    if not _turn(BALANCE_LOW, raised=low):
        return False
    if not low:
        logger.info(
            "The balance is %s again, not below %s: the alert is re-armed", balance, threshold
        )
        return False
    logger.warning("The balance is low: %s SMS left (threshold %s)", balance, threshold)
    _email_admins(balance, threshold)
    balance_low.send_robust(sender=BalanceSnapshot, balance=balance, threshold=threshold)
    return True


def _turn(name: str, *, raised: bool) -> bool:
    """Set alert ``name`` to ``raised`` if it is not already: True for the one caller that
    changed it (the update is conditional, so concurrent callers cannot both win)."""
    with serialized_writes():
        AlertState.objects.get_or_create(name=name)
        changed = AlertState.objects.filter(name=name, raised=not raised).update(
            raised=raised, changed_at=clock.now()
        )
    return changed == 1


def _email_admins(balance: int, threshold: int) -> None:
    """Tell ``ADMINS``; a mail server that fails is logged, never allowed to stop the reader
    (a worker, a command, the admin)."""
    subject = _("SMS balance low: {balance} left").format(balance=balance)
    body = _(
        "The Zhenzi SMS account has {balance} messages left, below the threshold of "
        "{threshold} (ZHENZI['LOW_BALANCE_THRESHOLD']). Top it up in the Zhenzi console before "
        "sending stops. This email is sent once; the next one comes after the balance has been "
        "at or above the threshold again."
    ).format(balance=balance, threshold=threshold)
    try:
        mail_admins(subject, body)
    except Exception:
        logger.exception("Could not email ADMINS about the low balance")
