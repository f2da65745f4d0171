"""zhenzi_health and the checks behind it (services.health), against the sandbox over HTTP and
the real database; the admin's banner."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_zhenzi.models import BalanceSnapshot, Message, Status, StatusReport
from django_zhenzi.services import health
from tests.paths import REPO

pytestmark = pytest.mark.django_db

BALANCE_PATH = "/account/balance.do"
TEXT = "【测试】通知"


def health_output(*args: str) -> tuple[int, str]:
    """Run zhenzi_health: its exit status (CommandError's returncode, as manage.py exits) and
    what it printed."""
    out = io.StringIO()
    try:
        call_command("zhenzi_health", *args, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def message(status: str = Status.QUEUED, **fields) -> Message:
    return Message.objects.create(number="13800138000", text=TEXT, status=status, **fields)


def ids(problems) -> list[str]:
    return [problem.id for problem in problems]


def test_a_healthy_site_exits_0(healthy_sandbox):
    message(Status.DELIVERED, sent_at=ago(7200))
    status, out = health_output()
    assert status == 0
    assert out.strip() == "Healthy: no problem found."
    assert healthy_sandbox.requests_by_endpoint[BALANCE_PATH] == 1


def test_json_of_a_healthy_site(healthy_sandbox):
    status, out = health_output("--json")
    assert status == 0
    assert json.loads(out) == {"healthy": True, "problems": []}


def test_unreachable_provider_is_a_problem_without_the_secret(settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": "http://127.0.0.1:9"}
    cache.clear()
    status, out = health_output()
    assert status == 1
    (line,) = out.splitlines()
    assert line.startswith("provider: Cannot read the balance from Zhenzi:")
    assert settings.ZHENZI["APP_SECRET"] not in out
    # A balance read sends nothing: the client's "nothing was sent" is not repeated.
    assert "Could not reach http://127.0.0.1:9/account/balance.do (" in line
    assert "nothing was sent" not in line


def test_provider_refusing_the_account_is_a_problem(healthy_sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "APP_SECRET": "a-wrong-secret-value"}
    status, out = health_output("--json")
    assert status == 1
    report = json.loads(out)
    assert report["healthy"] is False
    assert [problem["id"] for problem in report["problems"]] == ["provider"]
    assert "a-wrong-secret-value" not in out


def test_a_balance_under_the_threshold_is_a_problem(healthy_sandbox):
    healthy_sandbox.balance = 99
    status, out = health_output("--json")
    assert status == 1
    (problem,) = json.loads(out)["problems"]
    assert problem["id"] == "balance_low"
    assert problem["details"] == {"balance": 99, "threshold": 100}


def test_local_checks_do_not_ask_the_provider_and_use_the_last_recorded_balance(healthy_sandbox):
    BalanceSnapshot.objects.create(balance=500, recorded_at=ago(7200))
    BalanceSnapshot.objects.create(balance=12, recorded_at=ago(60))
    status, out = health_output("--local")
    assert status == 1
    assert out.startswith("balance_low: The balance is low: 12 SMS left, below 100.")
    assert healthy_sandbox.requests_by_endpoint[BALANCE_PATH] == 0


def test_due_messages_waiting_past_queue_alert_after_mean_no_worker(settings):
    message(next_attempt_at=ago(200))
    message(next_attempt_at=timezone.now() + timedelta(hours=1))  # a retry, not due yet
    assert health.local_checks() == []
    message(next_attempt_at=ago(400))
    message(next_attempt_at=ago(900))
    (problem,) = health.local_checks()
    assert problem.id == "queue_stalled"
    assert problem.details["count"] == 2
    assert 900 <= problem.details["oldest_due_seconds"] < 960
    assert problem.message.startswith("2 queued messages have been due for more than 300 seconds")

    assert problem.message.endswith("is a worker (zhenzi_send_queued --loop) running?")

    settings.ZHENZI = {**settings.ZHENZI, "QUEUE_ALERT_AFTER": 1000}
    assert health.local_checks() == []


@pytest.mark.parametrize(
    ("dispatch", "question"),
    [
        (
            "celery",
            "are Celery workers running, and Celery beat with the django_zhenzi.sweep task?",
        ),
        ("tasks", "is a worker of the Tasks backend running, and the sweep scheduled"),
    ],
)
def test_a_stalled_queue_names_the_engine_that_sends_it(settings, dispatch, question):
    settings.ZHENZI = {**settings.ZHENZI, "DISPATCH": dispatch}
    message(next_attempt_at=ago(900))
    (problem,) = health.local_checks()
    assert problem.id == "queue_stalled"
    assert question in problem.message
    assert "zhenzi_send_queued" not in problem.message


def test_one_due_message_reads_in_the_singular():
    message(next_attempt_at=ago(400))
    (problem,) = health.local_checks()
    assert problem.message.startswith("1 queued message has been due for more than 300 seconds")


def test_messages_stuck_in_unknown(settings):
    settle = 600 + 300  # RECONCILE_SETTLE + CLAIM_TIMEOUT
    message(Status.UNKNOWN, status_changed_at=ago(settle - 60), next_attempt_at=ago(0))
    assert health.local_checks() == []
    message(Status.UNKNOWN, status_changed_at=ago(settle + 60), next_attempt_at=ago(0))
    (problem,) = health.local_checks()
    assert problem.id == "unknown_stuck"
    assert problem.details == {"count": 1}


def test_no_callback_report_since_messages_were_sent_points_at_the_callback():
    recent = message(Status.SENT, sent_at=ago(600))
    assert health.local_checks() == []  # not an hour yet
    old = message(Status.SENT, sent_at=ago(7200))
    (problem,) = health.local_checks()
    assert problem.id == "no_reports"
    assert problem.details == {"count": 1, "last_callback_report_at": None}
    assert "callback URL" in problem.message

    # A report came through the callback after it was sent: the callback works.
    StatusReport.objects.create(
        message=recent, reported_message_id=recent.message_id, status=Status.DELIVERED,
        source=StatusReport.Source.CALLBACK, received_at=ago(300),
    )  # fmt: skip
    assert health.local_checks() == []

    # A polled report proves nothing about the callback.
    StatusReport.objects.all().delete()
    StatusReport.objects.create(
        message=old, reported_message_id=old.message_id, status=Status.DELIVERED,
        source=StatusReport.Source.POLL, received_at=ago(300),
    )  # fmt: skip
    assert ids(health.local_checks()) == ["no_reports"]


def test_every_problem_at_once_one_line_each(healthy_sandbox):
    healthy_sandbox.balance = 5
    message(next_attempt_at=ago(400))
    message(Status.UNKNOWN, status_changed_at=ago(3600), next_attempt_at=ago(0))
    message(Status.SENT, sent_at=ago(7200))
    status, out = health_output()
    assert status == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "balance_low",
        "queue_stalled",
        "unknown_stuck",
        "no_reports",
    ]
    assert ids(health.run_checks()) == list(health.CHECK_IDS[1:])


def test_every_check_id_is_in_the_docs():
    page = (REPO / "docs" / "operations.rst").read_text(encoding="utf-8")
    assert [check for check in health.CHECK_IDS if f"``{check}``" not in page] == []


MESSAGE_LIST_URL = "/admin/django_zhenzi/message/"


def test_admin_message_list_shows_problems_as_a_warning_banner(healthy_sandbox, admin_client):
    page = admin_client.get(MESSAGE_LIST_URL).content.decode()
    assert "healthy_sandbox-health" not in page

    message(next_attempt_at=ago(400))
    BalanceSnapshot.objects.create(balance=3, recorded_at=ago(60))
    page = admin_client.get(MESSAGE_LIST_URL).content.decode()
    assert '<li class="warning" data-check="balance_low">The balance is low: 3 SMS left' in page
    assert '<li class="warning" data-check="queue_stalled">1 queued message has been due' in page
    assert (
        healthy_sandbox.requests_by_endpoint[BALANCE_PATH] == 0
    )  # the page never asks the provider


def test_admin_banner_in_chinese(healthy_sandbox, admin_client):
    message(next_attempt_at=ago(400))
    page = admin_client.get(MESSAGE_LIST_URL, headers={"accept-language": "zh-hans"})
    assert 'data-check="queue_stalled">1 条' in page.content.decode()


def test_verbosity_0_prints_nothing_when_healthy(healthy_sandbox):
    assert health_output("-v", "0") == (0, "")


def test_admin_banner_leaves_the_balance_to_those_who_may_view_it(
    healthy_sandbox, client, django_user_model
):
    from django.contrib.auth.models import Permission

    message(next_attempt_at=ago(400))
    BalanceSnapshot.objects.create(balance=3, recorded_at=ago(60))
    user = django_user_model.objects.create_user("staff", password="unused", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="django_zhenzi", codename="view_message")
    )
    client.force_login(user)
    page = client.get(MESSAGE_LIST_URL).content.decode()
    assert 'data-check="queue_stalled"' in page
    assert 'data-check="balance_low"' not in page
