"""How fast the admin's lists answer on a big table (100,000 messages by default).

    .venv/bin/python benchmarks/bench_admin.py [--rows 100000] [--repeat 5]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/zhenzi_bench .venv/bin/python benchmarks/...

It creates a throwaway test database the way the test runner does (from tests/settings.py), fills
it, renders each page through Django's test client and prints the median time and the query
count per page. It prints figures and asserts nothing about time: the machine decides those.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_test_environment,
    teardown_test_environment,
)
from django.utils import timezone  # noqa: E402

from django_zhenzi.models import Message, Status, StatusReport  # noqa: E402

BATCH = 5000
STATUSES = [Status.DELIVERED] * 6 + [Status.SENT, Status.UNDELIVERED, Status.FAILED, Status.QUEUED]
PAGES = {
    "messages, first page": "/admin/django_zhenzi/message/",
    "messages, page 50": "/admin/django_zhenzi/message/?p=50",
    "messages, status=failed": "/admin/django_zhenzi/message/?status__exact=failed",
    "messages, template 1001": "/admin/django_zhenzi/message/?template=1001",
    "messages, search a number": "/admin/django_zhenzi/message/?q=13800012345",
    "reports, first page": "/admin/django_zhenzi/statusreport/",
    "reports, orphans": "/admin/django_zhenzi/statusreport/?orphan=yes",
}


def fill(rows: int) -> None:
    """``rows`` messages over the last 30 days, one report per ten, one report in a hundred
    an orphan."""
    now = timezone.now()
    spread = timedelta(days=30) / max(rows, 1)
    for start in range(0, rows, BATCH):
        batch = []
        for index in range(start, min(start + BATCH, rows)):
            template = index % 3 == 0
            status = STATUSES[index % len(STATUSES)]
            batch.append(
                Message(
                    number=f"138{index:08d}",
                    text="" if template else f"【基准】您的订单{index}已发货",
                    template_id="1001" if template else "",
                    template_params=[str(index), "5分钟"] if template else [],
                    status=status,
                    attempts=1,
                    error_code=110 if status == Status.FAILED else None,
                    created_at=now - spread * index,
                )
            )
        Message.objects.bulk_create(batch)
    reports = [
        StatusReport(message_id=pk, reported_message_id=message_id, raw_status="DELIVRD")
        for pk, message_id in Message.objects.values_list("pk", "message_id")[: rows // 10]
    ]
    reports += [
        StatusReport(reported_message_id=f"orphan-{index}", raw_status="DELIVRD")
        for index in range(rows // 100)
    ]
    StatusReport.objects.bulk_create(reports, batch_size=BATCH)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(client: Client, url: str, repeat: int) -> tuple[float, int]:
    """The median seconds over ``repeat`` renders (after one warm-up), and the query count."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    query_count = len(queries)  # read now: the next requests clear the connection's log
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), query_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="messages to create")
    parser.add_argument("--repeat", type=int, default=5, help="timed renders per page")
    options = parser.parse_args()

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        started = time.perf_counter()
        fill(options.rows)
        print(
            f"{connection.vendor}: {options.rows:,} messages created in "
            f"{time.perf_counter() - started:.1f} s"
        )
        user = get_user_model().objects.create_superuser("bench")
        client = Client()
        client.force_login(user)
        for name, url in PAGES.items():
            seconds, queries = measure(client, url, options.repeat)
            print(f"  {name:<28} {seconds * 1000:8.1f} ms  {queries:3d} queries")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
