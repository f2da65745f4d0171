"""The callback over real HTTP, on a live server: the sandbox's reports, and a flood of reports."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
from django.urls import reverse
from django.utils import timezone

from django_zhenzi import send_sms, signals
from django_zhenzi.models import Message, Status, StatusReport
from django_zhenzi.sandbox import REPORT_FORMATS, Sandbox

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "test-callback-token-0123456789"  # tests/settings.py
APP_SECRET = "test-secret-value"  # tests/settings.py
FORM = "application/x-www-form-urlencoded; charset=UTF-8"
JSON = "application/json;charset=UTF-8"
CLIENTS = 20
MESSAGES = 100  # each client reports on every message once: 2,000 reports


@pytest.fixture
def status_changes() -> Iterator[list[tuple[str, str, str]]]:
    """(messageId, old, new) for every status_changed, from any thread."""
    seen: list[tuple[str, str, str]] = []

    def record(sender, message, old_status, new_status, **kwargs):
        seen.append((message.message_id, old_status, new_status))

    signals.status_changed.connect(record)
    yield seen
    signals.status_changed.disconnect(record)


@pytest.fixture
def callback_url(live_server) -> str:
    return live_server.url + reverse("django_zhenzi:callback", kwargs={"token": TOKEN})


@pytest.mark.parametrize("report_format", REPORT_FORMATS)
def test_sandbox_reports_land_through_the_view(
    settings, callback_url, status_changes, report_format
):
    with Sandbox(
        port=0,
        app_id="test-app",
        app_secret=APP_SECRET,
        callback_url=callback_url,
        report_delay=0.05,
        report_format=report_format,
    ) as sandbox:
        settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
        delivered, undelivered = send_sms(["13800138000", "13800138004"], "【测试】您的订单已发货")
        assert sandbox.wait_for_reports(2, timeout=30)
        attempts = sandbox.reports

    assert [(a["http_status"], a["ok"]) for a in attempts] == [(200, True), (200, True)]
    delivered.refresh_from_db()
    undelivered.refresh_from_db()
    assert (delivered.status, delivered.provider_status) == (Status.DELIVERED, "success")
    assert (undelivered.status, undelivered.provider_status) == (Status.UNDELIVERED, "fail")
    for message, carrier_code in ((delivered, "DELIVRD"), (undelivered, "UNDELIV")):
        report = StatusReport.objects.get(message=message)
        assert report.source == StatusReport.Source.CALLBACK
        assert report.number == message.number
        assert report.payload["errorCode"] == carrier_code
        assert report.payload["appName"] == "test-app"
    # The report may overtake the worker's record of the answer; either way one change to final.
    finals = {(message_id, new) for message_id, _, new in status_changes if new != Status.SENT}
    assert finals == {
        (delivered.message_id, Status.DELIVERED),
        (undelivered.message_id, Status.UNDELIVERED),
    }


def encode(report: dict[str, str], variant: int) -> tuple[bytes, str]:
    """One report as a form, a JSON object or a JSON array, by ``variant``."""
    if variant % 3 == 0:
        return urlencode(report).encode(), FORM
    document = report if variant % 3 == 1 else [report]
    return json.dumps(document).encode(), JSON


@pytest.mark.slow
def test_a_flood_of_reports_from_20_clients(callback_url, status_changes):
    moment = timezone.now()
    messages = Message.objects.bulk_create(
        Message(number="13800138000", text="【测试】通知", status=Status.SENT, sent_at=moment)
        for _ in range(MESSAGES)
    )
    message_ids = [message.message_id for message in messages]
    answers: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        order = random.Random(number).sample(message_ids, len(message_ids))
        try:
            with requests.Session() as session:
                session.trust_env = False  # loopback only, never an environment proxy
                start.wait(timeout=30)
                for index, message_id in enumerate(order):
                    word = ("success", "DELIVRD", "0")[index % 3]
                    report = {"messageId": message_id, "toNumber": "13800138000", "status": word}
                    body, content_type = encode(report, number + index)
                    with session.post(
                        callback_url, data=body, headers={"Content-Type": content_type}, timeout=60
                    ) as response:
                        answers.append(response.status_code)
        except BaseException as failure:  # reported below, in the test's thread
            failures.append(failure)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)

    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert Counter(answers) == {200: CLIENTS * MESSAGES}
    assert StatusReport.objects.count() == CLIENTS * MESSAGES
    per_message = Counter(StatusReport.objects.values_list("message__message_id", flat=True))
    assert per_message == dict.fromkeys(message_ids, CLIENTS)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.DELIVERED}
    assert sorted(status_changes) == sorted(
        (message_id, Status.SENT, Status.DELIVERED) for message_id in message_ids
    )
