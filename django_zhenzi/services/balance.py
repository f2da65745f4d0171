"""The account's balance: read live, recorded as snapshots, cached for the admin."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache

from django_zhenzi.backends import get_backend
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import BalanceSnapshot
from django_zhenzi.services import alerts, clock
from django_zhenzi.services.transitions import serialized_writes


def read_balance(*, record: bool = True) -> int:
    """The live balance from the provider, recorded as a snapshot (unless ``record`` is false)
    and checked against LOW_BALANCE_THRESHOLD (services.alerts)."""
    balance = get_backend().balance()
    if record:
        with serialized_writes():
            BalanceSnapshot.objects.create(balance=balance, recorded_at=clock.now())
    alerts.balance_read(balance)
    return balance


@dataclass(frozen=True)
class BalanceReading:
    """A balance as the provider gave it, when, and whether it came from the cache."""

    balance: int
    read_at: datetime
    cached: bool


def cached_balance(*, refresh: bool = False) -> BalanceReading:
    """The live balance, asked of the provider (and recorded as a snapshot) at most once per
    BALANCE_CACHE_SECONDS, kept in Django's cache; ``refresh`` asks now. Errors are not kept.
    """
    key = balance_cache_key()
    if not refresh:
        kept = cache.get(key)
        if kept is not None:
            return BalanceReading(balance=kept[0], read_at=kept[1], cached=True)
    balance = read_balance(record=True)
    read_at = clock.now()
    seconds = float(zhenzi_settings.BALANCE_CACHE_SECONDS)
    if seconds > 0:
        cache.set(key, (balance, read_at), seconds)
    return BalanceReading(balance=balance, read_at=read_at, cached=False)


def balance_cache_key() -> str:
    """One cache entry per account and backend; the key is a hash that leaves out the secret."""
    identity = f"{zhenzi_settings.BACKEND}|{zhenzi_settings.API_URL}|{zhenzi_settings.APP_ID}"
    return "django_zhenzi:balance:" + hashlib.sha256(identity.encode()).hexdigest()[:32]
