"""Fault injection: added latency, random faults at given rates, and queued one-shot faults."""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Mapping
from typing import Any

FAULT_KINDS = ("timeout", "http500", "non_json", "code1000", "cut", "late")
# "cut" and "late" drop the answer, not the request: the provider processes it all the same.
UNPROCESSED_FAULTS = frozenset(FAULT_KINDS) - {"cut", "late"}


def check_non_negative(name: str, value: Any) -> float:
    """``value`` if it is a finite number >= 0, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_non_negative_int(name: str, value: Any) -> int:
    """``value`` if it is an integer >= 0, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def check_fault_kind(kind: Any) -> str:
    """``kind`` if it is one of FAULT_KINDS, else ValueError."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    return kind


def check_fault_count(count: Any) -> int:
    """``count`` if it is an integer >= 1, else ValueError."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"fault count must be an integer >= 1, got {count!r}")
    return count


def check_fault_rates(rates: Any) -> dict[str, float]:
    """The non-zero rates in FAULT_KINDS order; each in 0..1 and together at most 1."""
    if not isinstance(rates, Mapping):
        raise ValueError(f"fault rates must map a kind to a rate, got {rates!r}")
    for kind, rate in rates.items():
        check_fault_kind(kind)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"fault rate for {kind!r} must be between 0 and 1, got {rate!r}")
    if sum(rates.values()) > 1:
        raise ValueError(f"fault rates add up to more than 1: {dict(rates)!r}")
    return {kind: float(rates[kind]) for kind in FAULT_KINDS if rates.get(kind)}


class FaultPlan:
    """Which fault, if any, the next API request gets. Not locked: the sandbox's lock guards it.

    Queued one-shot faults come first; otherwise one roll of a seeded ``random.Random`` picks
    a kind in proportion to the rates.
    """

    def __init__(self, latency: float, rates: Mapping[str, float], seed: int | None) -> None:
        self.latency = check_non_negative("latency", latency)
        self.rates = check_fault_rates(rates)
        self._seed = seed
        self._random = random.Random(seed)  # noqa: S311 (fault rolls, not security)
        self._queued: collections.deque[list[Any]] = collections.deque()

    def queue(self, kind: str, count: int) -> None:
        """Give the next ``count`` requests the fault ``kind`` (arguments already checked)."""
        if self._queued and self._queued[-1][0] == kind:
            self._queued[-1][1] += count
        else:
            self._queued.append([kind, count])

    def pick(self) -> str | None:
        """The fault for the request at hand, or None."""
        if self._queued:
            entry = self._queued[0]
            entry[1] -= 1
            if entry[1] == 0:
                self._queued.popleft()
            return entry[0]
        if self.rates:
            roll = self._random.random()
            for kind, rate in self.rates.items():
                if roll < rate:
                    return kind
                roll -= rate
        return None

    def clear(self) -> None:
        """No latency, no rates, nothing queued; the random sequence starts over."""
        self.latency = 0.0
        self.rates = {}
        self._queued.clear()
        self._random = random.Random(self._seed)  # noqa: S311 (fault rolls, not security)

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "rates": dict(self.rates),
            "next": [list(entry) for entry in self._queued],
        }
