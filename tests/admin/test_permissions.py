"""Who may see which admin page, and what no page may show."""

from __future__ import annotations

import pytest

from django_zhenzi import services
from django_zhenzi.models import Message, StatusReport
from tests.admin.pages import (
    APP_SECRET,
    BALANCE_URL,
    MESSAGES_URL,
    REPORTS_URL,
    SEND_URL,
    ZH,
    all_app_permissions,
    make_message,
    run_action,
    send_form,
    sent_through_sandbox,
)

pytestmark = pytest.mark.django_db


# --- Who may see what ----------------------------------------------------------------------------


def message_page() -> str:
    return f"{MESSAGES_URL}{make_message().pk}/change/"


def report_page() -> str:
    report = StatusReport.objects.create(reported_message_id="abc", raw_status="DELIVRD")
    return f"{REPORTS_URL}{report.pk}/change/"


PAGES = {
    "message list": (lambda: MESSAGES_URL, {"view_message", "change_message"}),
    "message page": (message_page, {"view_message", "change_message"}),
    "report list": (lambda: REPORTS_URL, {"view_statusreport", "change_statusreport"}),
    "report page": (report_page, {"view_statusreport", "change_statusreport"}),
    "balance": (lambda: BALANCE_URL, {"view_balance"}),
    "send form": (lambda: SEND_URL, {"send_message"}),
}


@pytest.mark.parametrize("page", PAGES)
def test_each_page_renders_with_its_permission(page, zhenzi, login_with):
    url, granting = PAGES[page]
    client = login_with(sorted(granting)[-1])
    response = client.get(url())
    assert response.status_code == 200


@pytest.mark.parametrize("page", PAGES)
def test_each_page_is_forbidden_without_its_permission(page, zhenzi, login_with):
    url, granting = PAGES[page]
    client = login_with(*(all_app_permissions() - granting))
    response = client.get(url())
    assert response.status_code == 403
    assert zhenzi.requests_total == 0


def test_djangos_own_balancesnapshot_permission_does_not_open_the_balance(zhenzi, login_with):
    response = login_with("view_balancesnapshot").get(BALANCE_URL)
    assert response.status_code == 403
    assert zhenzi.requests_total == 0


def test_messages_cannot_be_added_or_edited(admin_client):
    message = make_message()
    assert admin_client.get(f"{MESSAGES_URL}add/").status_code == 403
    response = admin_client.post(f"{MESSAGES_URL}{message.pk}/change/", {"number": "13900139000"})
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.number == "13800138000"


def test_balance_is_listed_in_the_app_index_for_its_permission(zhenzi, login_with):
    page = login_with("view_balance").get("/admin/django_zhenzi/")
    assert page.status_code == 200
    assert BALANCE_URL.encode() in page.content
    assert zhenzi.requests_total == 0  # the index never asks the provider


# --- The secret and the language -----------------------------------------------------------------


def test_the_app_secret_appears_on_no_page(
    zhenzi, admin_client, django_capture_on_commit_callbacks
):
    (message,) = sent_through_sandbox(["13800138000"], django_capture_on_commit_callbacks)
    services.refresh_statuses(Message.objects.all())
    report = StatusReport.objects.get()
    pages = [
        admin_client.get("/admin/"),
        admin_client.get("/admin/django_zhenzi/"),
        admin_client.get(MESSAGES_URL),
        admin_client.get(f"{MESSAGES_URL}{message.pk}/change/"),
        admin_client.get(REPORTS_URL),
        admin_client.get(f"{REPORTS_URL}{report.pk}/change/"),
        admin_client.get(BALANCE_URL),
        admin_client.get(SEND_URL),
        admin_client.post(SEND_URL, send_form(numbers="bad")),
    ]
    zhenzi.app_secret = "changed-in-the-console"  # the provider now refuses ours
    pages += [
        admin_client.post(BALANCE_URL),
        run_action(admin_client, "refresh_status", [message]),
    ]
    for response in pages:
        assert response.status_code == 200
        assert APP_SECRET not in response.content.decode()


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_in_chinese(page, zhenzi, admin_client):
    url, _granting = PAGES[page]
    response = admin_client.get(url(), **ZH)
    assert response.status_code == 200
    assert "首页" in response.content.decode()  # Django's own admin translation


def test_our_pages_are_translated_to_chinese(zhenzi, admin_client):
    html = admin_client.get(BALANCE_URL, **ZH).content.decode()
    assert "余额" in html
