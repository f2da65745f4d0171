"""The one outcome policy: what happens to a message after each answer (or silence) of the
provider. Every path that sends (send-now, workers, verification codes, the admin, the
commands) asks ``decide``; nothing else decides whether to retry, pause, fail or reconcile.

- code 0: ``sent``.
- 100, 101, 109, 117, an undocumented code: FAIL, ``failed`` with the provider's reason.
- 1000, or a request that never reached the provider: RETRY, ``queued`` again after a backoff,
  until MAX_ATTEMPTS.
- 105, 106, 107, 110, 111 (the account) and 108 (no balance): PAUSE, ``queued`` again with the
  attempt not counted; the sender stops, and a ``--loop`` worker checks the balance until the
  account works again.
- read timeout, 5xx, cut connection, a body that is not an answer: RECONCILE, ``unknown``: ask
  findSmsByMessageId; resend only if it still says "not found" after RECONCILE_SETTLE.
- a repeated messageId refused: RECONCILE: the refusal proves an earlier attempt arrived, so the
  message is never resent nor failed.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import timedelta

from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import (
    ACCOUNT_ERROR_CODES,
    ZhenziAPIError,
    ZhenziError,
    ZhenziTransportError,
)
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import MaybeSent


class Action(enum.Enum):
    RETRY = "retry"
    PAUSE = "pause"
    FAIL = "fail"
    RECONCILE = "reconcile"


#: Every documented provider code, and what it does to the message that got it.
PROVIDER_CODES: dict[int, Action] = {
    100: Action.FAIL,  # a parameter is malformed: the same request fails again
    101: Action.FAIL,  # text over 1000 characters
    **dict.fromkeys(ACCOUNT_ERROR_CODES, Action.PAUSE),  # appId, disabled, IP, appSecret, account
    108: Action.PAUSE,  # no balance: every message would get it until a top-up
    109: Action.FAIL,  # the number's daily cap, set in the console
    117: Action.FAIL,  # the template id is wrong or not approved
    1000: Action.RETRY,  # an unknown system error at the provider, usually passing
}


@dataclass(frozen=True)
class Decision:
    action: Action
    #: For RECONCILE: why the message may have been sent (a ``MaybeSent`` value).
    maybe_sent: str = ""


def decide(error: ZhenziError) -> Decision:
    """What to do with a message whose attempt raised ``error``."""
    if isinstance(error, ZhenziAPIError):
        if error.duplicate_message_id:
            return Decision(Action.RECONCILE, MaybeSent.DUPLICATE)
        return Decision(PROVIDER_CODES.get(error.code, Action.FAIL))
    if isinstance(error, ZhenziTransportError):
        if error.maybe_sent:
            return Decision(Action.RECONCILE, MaybeSent.NO_ANSWER)
        return Decision(Action.RETRY)
    if isinstance(error, OperationNotSupported):
        return Decision(Action.FAIL)
    return Decision(Action.RETRY if error.retryable else Action.FAIL)


def pauses_sending(code: int | None) -> bool:
    """Whether a stored error code is a refusal of the whole account (sending pauses)."""
    return code is not None and PROVIDER_CODES.get(code) is Action.PAUSE


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: half the step fixed, half random."""
    base = float(zhenzi_settings.RETRY_DELAY)
    step = min(float(zhenzi_settings.RETRY_MAX_DELAY), base * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=step / 2 + (rng or random).uniform(0, step / 2))
