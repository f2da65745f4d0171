"""An SMS-bombing attack on a code-request page, and what the abuse limits let through.

10,000 code requests from 100 client IPs for 1,000 numbers, spread over one simulated hour,
against the code-request page the tests wire under /codes/ (the shipped
``django_zhenzi.verification.views``), with the default limits. Prints the requests, the refusals
by limit, the messages actually sent and the most the limits allow; exits non-zero if more were
sent.

    .venv/bin/python benchmarks/attack_codes.py [--set LIMIT_SITE_PER_DAY=5000 ...]

It creates and drops a test database (SQLite, or DATABASE_URL as in the test suite). The clock is
simulated (``services.clock.stopped``), so one hour of attack runs in about a minute;
``--seconds 0``
sends every request at one instant.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client

CODE_MESSAGE = "【测试】您的验证码是{code}，{minutes}分钟内有效。"
LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"


@dataclass
class AttackResult:
    requests: int
    numbers: int
    ips: int
    seconds: float
    accepted: int = 0
    refused_pages: int = 0
    sent: int = 0
    refused_by_limit: Counter[str] = field(default_factory=Counter)
    most_to_one_number: int = 0
    most_from_one_ip: int = 0
    bounds: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def theoretical_max(self) -> int:
        return min(self.bounds.values())

    def report(self) -> str:
        lines = [
            f"requests: {self.requests} from {self.ips} IPs for {self.numbers} numbers "
            f"over {self.seconds:g} simulated seconds ({self.elapsed:.1f} s real, "
            f"{self.requests / max(self.elapsed, 1e-9):.0f} requests/s)",
            f"answered 302 (code sent): {self.accepted}; answered 429 (refused): "
            f"{self.refused_pages}",
            "refused by limit: "
            + ", ".join(f"{name} {count}" for name, count in self.refused_by_limit.most_common()),
            f"SMS actually sent: {self.sent} (most to one number: {self.most_to_one_number}, "
            f"most from one IP: {self.most_from_one_ip})",
            "theoretical max under the limits: "
            + ", ".join(f"{name} {value}" for name, value in self.bounds.items())
            + f" -> {self.theoretical_max}",
        ]
        return "\n".join(lines)


def limit_bounds(numbers: int, ips: int, seconds: float) -> dict[str, int]:
    """The most messages each group of limits allows in ``seconds``: a limit's window opens at
    its first message and lasts its period, so a span of ``seconds`` holds at most
    ``floor(seconds / period) + 1`` windows of it."""
    from django_zhenzi.conf import zhenzi_settings as config
    from django_zhenzi.services.limits import DAY, HOUR, MINUTE

    def windows(period: float) -> int:
        return math.floor(seconds / period) + 1

    per_number = min(
        windows(float(config.CODE_COOLDOWN)),
        config.LIMIT_NUMBER_PER_HOUR * windows(HOUR),
        config.LIMIT_NUMBER_PER_DAY * windows(DAY),
    )
    return {
        "per number x numbers": per_number * numbers,
        "per IP x IPs": config.LIMIT_IP_PER_HOUR * windows(HOUR) * ips,
        "site per minute": config.LIMIT_SITE_PER_MINUTE * windows(MINUTE),
        "site per day": config.LIMIT_SITE_PER_DAY * windows(DAY),
    }


def run_attack(
    client: Client,
    set_clock: Callable[[datetime], None],
    *,
    requests: int = 10_000,
    ips: int = 100,
    numbers: int = 1_000,
    seconds: float = 3600.0,
    seed: int = 1,
) -> AttackResult:
    """POST ``requests`` code requests to the test page, request i at ``i * seconds / requests``
    simulated seconds, from IP ``i % ips``, for a random one of ``numbers`` numbers."""
    from django.db.models import Count, Sum
    from django.urls import reverse

    import django_zhenzi
    from django_zhenzi.models import Message, RateLimitRefusal, Status
    from django_zhenzi.services.clock import now

    rng = random.Random(seed)
    targets = [f"138{index:08d}" for index in range(numbers)]
    addresses = [f"198.18.{index // 250}.{index % 250 + 1}" for index in range(ips)]
    url = reverse("codes:request")
    start = now()
    span = seconds * (requests - 1) / requests  # from the first request to the last
    result = AttackResult(requests, numbers, ips, seconds, bounds=limit_bounds(numbers, ips, span))
    began = time.monotonic()
    for index in range(requests):
        set_clock(start + timedelta(seconds=index * seconds / requests))
        response = client.post(
            url, {"number": rng.choice(targets)}, REMOTE_ADDR=addresses[index % ips]
        )
        if response.status_code == 302:
            result.accepted += 1
        elif response.status_code == 429:
            result.refused_pages += 1
        else:
            raise AssertionError(f"request {index}: unexpected answer {response.status_code}")
    result.elapsed = time.monotonic() - began
    sent = Message.objects.filter(status=Status.SENT)
    result.sent = sent.count()
    assert result.sent == len(django_zhenzi.outbox) == result.accepted
    result.refused_by_limit = Counter(
        {
            row["limit"]: row["total"]
            for row in RateLimitRefusal.objects.values("limit").annotate(total=Sum("count"))
        }
    )
    for group, attribute in (("number", "most_to_one_number"), ("client_ip", "most_from_one_ip")):
        counts = sent.values(group).annotate(total=Count("id")).order_by("-total")
        setattr(result, attribute, counts[0]["total"] if counts else 0)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--ips", type=int, default=100)
    parser.add_argument("--numbers", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=3600.0, help="simulated attack length")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=NUMBER",
        help="a ZHENZI setting for the run, e.g. LIMIT_SITE_PER_DAY=5000",
    )
    options = parser.parse_args(argv)
    overrides = {}
    for item in options.set:
        key, _, value = item.partition("=")
        overrides[key] = float(value) if "." in value else int(value)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client, override_settings
    from django.test.utils import (
        setup_databases,
        setup_test_environment,
        teardown_databases,
        teardown_test_environment,
    )

    from django_zhenzi import services

    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        zhenzi = {**settings.ZHENZI, "BACKEND": LOCMEM, "CODE_MESSAGE": CODE_MESSAGE, **overrides}
        with override_settings(ZHENZI=zhenzi), services.clock.stopped() as clock:
            result = run_attack(
                Client(),
                lambda value: setattr(clock, "moment", value),
                requests=options.requests,
                ips=options.ips,
                numbers=options.numbers,
                seconds=options.seconds,
                seed=options.seed,
            )
    finally:
        teardown_databases(databases, verbosity=0)
        teardown_test_environment()
    print(result.report())
    return 0 if result.sent <= result.theoretical_max else 1


if __name__ == "__main__":
    sys.exit(main())
