"""Abuse limits: how many messages may go to one number, be caused by one client IP, and leave
the whole site, so a script cannot make the site send codes to other people's numbers ("SMS
bombing") or burn the balance.

Every limit counts in a window that opens with its first message and lasts the limit's period
(the cooldown is a window of one message). A send is counted against all its limits in one
transaction, each by one conditional UPDATE of a ``RateCounter`` row (created on first use under
a unique constraint): correct with any number of processes on any number of hosts. When one limit
refuses, the transaction rolls back, so nothing is counted and nothing is sent. The counters are
then read again to find every limit that refuses: :class:`RateLimited` names the one that holds
the send up longest and the seconds until its window ends, so a retry after that wait is not
refused again by another. Refusals are counted per limit, subject and hour in
``RateLimitRefusal`` (shown in the admin).

Counters are taken in one fixed order (limit, then subject), so concurrent sends never deadlock.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, OperationalError, connections, router, transaction
from django.db.models import Case, F, Model, Q, Value, When

from django_zhenzi.client import (
    mask_number,
    normalized_or_none,
    validate_client_ip,
)
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.exceptions import RateLimited
from django_zhenzi.models import RateCounter, RateLimit, RateLimitRefusal
from django_zhenzi.services import clock
from django_zhenzi.services.content import as_number_list

logger = logging.getLogger("django_zhenzi")

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
#: IPv6 clients are counted by network: one subscriber usually holds a whole /64.
IPV6_PREFIX = 64
#: How many times a send's limits are taken when the database breaks a deadlock by rolling back.
DEADLOCK_ATTEMPTS = 5
#: MySQL's and MariaDB's error number for ER_LOCK_DEADLOCK.
MYSQL_DEADLOCK = 1213


@dataclass(frozen=True)
class Rule:
    """One limit: the setting holding its cap and the window it counts in."""

    limit: RateLimit
    setting: str
    period: float | None
    """Seconds; None for the cooldown, whose setting is the period and whose cap is one."""

    def cap_and_period(self) -> tuple[int, float]:
        value = getattr(zhenzi_settings, self.setting)
        return (1, float(value)) if self.period is None else (int(value), self.period)


#: The limits, in the order they are checked (and their counters locked).
RULES: dict[RateLimit, Rule] = {
    rule.limit: rule
    for rule in (
        Rule(RateLimit.CODE_COOLDOWN, "CODE_COOLDOWN", None),
        Rule(RateLimit.NUMBER_HOUR, "LIMIT_NUMBER_PER_HOUR", HOUR),
        Rule(RateLimit.NUMBER_DAY, "LIMIT_NUMBER_PER_DAY", DAY),
        Rule(RateLimit.IP_HOUR, "LIMIT_IP_PER_HOUR", HOUR),
        Rule(RateLimit.SITE_MINUTE, "LIMIT_SITE_PER_MINUTE", MINUTE),
        Rule(RateLimit.SITE_DAY, "LIMIT_SITE_PER_DAY", DAY),
    )
}


def check_send(
    numbers: str | int | Iterable[str | int], client_ip: str | None = None, *, code: bool = False
) -> None:
    """Count one message to each of ``numbers`` against the limits, or raise RateLimited (for
    the refusing limit that holds the send up longest) and count nothing. ``code=True`` adds the
    cooldown between codes.

    Numbers that are not valid mobile numbers are left out (their send fails on its own); the
    per-IP limit applies only when ``client_ip`` is given. Inside a transaction the counts
    commit (or roll back) with it.
    """
    valid = (normalized_or_none(number) for number in as_number_list(numbers))
    wanted = Counter(number for number in valid if number is not None)
    if not wanted:
        return
    ip_subject = subject_for_ip(client_ip) if client_ip not in (None, "") else None
    plan = list(_plan(wanted, ip_subject, code=code))
    moment = clock.now()
    try:
        _take_all(plan, moment)
    except RateLimited as first:
        refusal = _longest_refusal(plan, moment, first)
        _record_refusal(refusal, moment)
        logger.info(
            "Refused by %s for %s; retry in %s s",
            refusal.limit.value,
            mask_number(refusal.subject) if refusal.subject.isdigit() else refusal.subject or "-",
            refusal.retry_after,
        )
        raise refusal from None


def _take_all(plan: list[tuple[Rule, str, int]], moment: datetime) -> None:
    """Take every counter of ``plan`` in one transaction, or none (RateLimited).

    MySQL and MariaDB can still pick a transaction here as a deadlock victim (InnoDB locks the
    index records next to a counter too, such as deleted ones not yet purged) and roll it back;
    nothing was counted then, so a transaction of its own is simply run again. Inside the
    caller's transaction, which the deadlock rolled back as a whole, the error goes to the caller.
    """
    alias = router.db_for_write(RateCounter)
    attempts = 1 if transaction.get_connection(alias).in_atomic_block else DEADLOCK_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic(using=alias):
                for rule, subject, amount in plan:
                    _take(rule, subject, amount, moment)
            return
        except OperationalError as error:
            if attempt == attempts or not is_deadlock(error):
                raise
            logger.debug("Rate limits: deadlock victim, trying again (attempt %d)", attempt)


def is_deadlock(error: DatabaseError) -> bool:
    """Whether the database rolled back the transaction to break a deadlock (MySQL and MariaDB:
    error 1213; PostgreSQL: SQLSTATE 40P01)."""
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) == "40P01":
        return True
    return isinstance(cause, Exception) and cause.args[:1] == (MYSQL_DEADLOCK,)


def subject_for_ip(client_ip: str) -> str:
    """What the per-IP limit counts: the address, or its /64 network for IPv6."""
    address = ipaddress.ip_address(validate_client_ip(client_ip))
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def _plan(
    wanted: Counter[str], ip_subject: str | None, *, code: bool
) -> Iterator[tuple[Rule, str, int]]:
    """(rule, subject, amount) for every counter a send takes, in locking order."""
    total = sum(wanted.values())
    numbers = sorted(wanted.items())
    if code:
        yield from ((RULES[RateLimit.CODE_COOLDOWN], number, 1) for number, _ in numbers)
    for limit in (RateLimit.NUMBER_HOUR, RateLimit.NUMBER_DAY):
        yield from ((RULES[limit], number, amount) for number, amount in numbers)
    if ip_subject is not None:
        yield RULES[RateLimit.IP_HOUR], ip_subject, total
    yield RULES[RateLimit.SITE_MINUTE], "", total
    yield RULES[RateLimit.SITE_DAY], "", total


def _take(rule: Rule, subject: str, amount: int, moment: datetime) -> None:
    """Count ``amount`` messages on one counter, or raise RateLimited."""
    cap, period = rule.cap_and_period()
    window_opened_before = moment - timedelta(seconds=period)
    window_over = Q(window_start__lte=window_opened_before)
    key = {"limit": rule.limit, "subject": subject}
    if amount <= cap and _count(
        RateCounter,
        key,
        condition=window_over | Q(count__lte=cap - amount),
        changes={
            "count": Case(When(window_over, then=Value(amount)), default=F("count") + amount),
            "window_start": Case(When(window_over, then=Value(moment)), default=F("window_start")),
        },
        blank={"window_start": window_opened_before, "count": 0},
    ):
        return
    window_start = RateCounter.objects.filter(**key).values_list("window_start", flat=True).first()
    raise RateLimited(rule.limit, subject, _retry_after(period, window_start, moment))


def _longest_refusal(
    plan: list[tuple[Rule, str, int]], moment: datetime, first: RateLimited
) -> RateLimited:
    """Of every limit in ``plan`` that refuses now, the one that holds the send up longest
    (``first`` when none holds it longer). Reads the counters; counts nothing."""
    wanted = Q()
    for rule, subject, _amount in plan:
        wanted |= Q(limit=rule.limit, subject=subject)
    counters = {
        (counter.limit, counter.subject): counter for counter in RateCounter.objects.filter(wanted)
    }
    longest = first
    for rule, subject, amount in plan:
        refusal = _refusal(rule, subject, amount, counters.get((rule.limit, subject)), moment)
        if refusal is not None and refusal.retry_after > longest.retry_after:
            longest = refusal
    return longest


def _refusal(
    rule: Rule, subject: str, amount: int, counter: RateCounter | None, moment: datetime
) -> RateLimited | None:
    """What ``_take`` would raise for ``counter`` as read (its UPDATE's condition, in Python),
    or None when it would count ``amount``."""
    cap, period = rule.cap_and_period()
    if amount <= cap and (
        counter is None
        or counter.window_start <= moment - timedelta(seconds=period)
        or counter.count <= cap - amount
    ):
        return None
    window_start = counter.window_start if counter is not None else None
    return RateLimited(rule.limit, subject, _retry_after(period, window_start, moment))


def _retry_after(period: float, window_start: datetime | None, moment: datetime) -> int:
    """Whole seconds (at least one) until the window opened at ``window_start`` ends; a window
    not opened yet would open now."""
    wait = ((window_start or moment) - moment).total_seconds() + period
    return max(1, math.ceil(wait))


def _record_refusal(refusal: RateLimited, moment: datetime) -> None:
    _count(
        RateLimitRefusal,
        {
            "limit": refusal.limit,
            "subject": refusal.subject,
            "hour": moment.replace(minute=0, second=0, microsecond=0),
        },
        condition=Q(),
        changes={"count": F("count") + 1, "last_refused_at": moment},
        blank={"count": 0, "last_refused_at": moment},
    )


def _count(
    model: type[Model],
    key: dict[str, object],
    *,
    condition: Q,
    changes: dict[str, object],
    blank: dict[str, object],
) -> bool:
    """Apply ``changes`` to the row with ``key`` if it meets ``condition``; False if it does not.

    A missing row is first created as ``blank`` (counting nothing) with an insert that ignores
    conflicts, so concurrent first uses all end on the same row; then the one conditional
    UPDATE decides, which the database runs atomically.
    """
    rows = model._default_manager.filter(condition, **key)
    if rows.update(**changes):
        return True
    _create_if_missing(model, key, blank)
    return bool(rows.update(**changes))


def _create_if_missing(
    model: type[Model], key: dict[str, object], blank: dict[str, object]
) -> None:
    """Insert the row ``key`` as ``blank`` unless it exists; concurrent calls never fail.

    On MySQL and MariaDB an ``INSERT IGNORE`` that meets an existing row takes a shared lock on
    it, and the UPDATE that follows needs an exclusive one: two transactions that both hit the
    row then wait for each other, a deadlock. ``ON DUPLICATE KEY UPDATE`` (setting a key column
    to the value it has) takes the exclusive lock at once, so they queue instead.
    """
    row = model(**key, **blank)
    manager = model._default_manager
    if connections[router.db_for_write(model)].vendor == "mysql":
        manager.bulk_create([row], update_conflicts=True, update_fields=[next(iter(key))])
    else:
        manager.bulk_create([row], ignore_conflicts=True)
