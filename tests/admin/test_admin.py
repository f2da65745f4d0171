"""The admin, through the Django test client against the real admin site and the sandbox."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.db.models import JSONField, Value
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape

from django_zhenzi import send_sms, services, signals
from django_zhenzi.admin import actions as admin_actions
from django_zhenzi.admin import chart as charts
from django_zhenzi.admin import messages as history
from django_zhenzi.admin import pagination, reports
from django_zhenzi.admin.send_form import MAX_SEND_NOW, SendForm, split_numbers
from django_zhenzi.client import ZhenziClient, ZhenziInputError
from django_zhenzi.models import BalanceSnapshot, Message, Status, StatusReport
from django_zhenzi.reasons import ErrorKind, Reason

pytestmark = pytest.mark.django_db

APP_SECRET = "test-secret-value"
LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback

MESSAGES_URL = "/admin/django_zhenzi/message/"
REPORTS_URL = "/admin/django_zhenzi/statusreport/"
BALANCE_URL = "/admin/django_zhenzi/balancesnapshot/"
SEND_URL = "/admin/django_zhenzi/message/send/"
ZH = {"headers": {"accept-language": "zh-hans"}}


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def zhenzi(settings, sandbox):
    """The app pointed at the sandbox; delivery reports are due at once."""
    sandbox.report_delay = 0
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox


def make_message(**fields) -> Message:
    fields.setdefault("number", "13800138000")
    fields.setdefault("text", "【测试】您的订单已发货")
    return Message.objects.create(**fields)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def all_app_permissions() -> set[str]:
    return set(
        Permission.objects.filter(content_type__app_label="django_zhenzi").values_list(
            "codename", flat=True
        )
    )


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


# --- Message history -----------------------------------------------------------------------------


def test_message_list_is_newest_first_with_badges_content_and_errors(admin_client):
    now = timezone.now()
    make_message(number="13800000001", created_at=now - timedelta(hours=2), text="【测试】旧的")
    make_message(
        number="13800000002",
        created_at=now - timedelta(hours=1),
        text="",
        template_id="1001",
        template_params=["9988", "5分钟"],
        status=Status.DELIVERED,
    )
    make_message(
        number="13800000003",
        created_at=now,
        status=Status.FAILED,
        error_code=110,
        error_text="Zhenzi error 110 ...",
        attempts=1,
    )

    response = admin_client.get(MESSAGES_URL)

    html = response.content.decode()
    positions = [html.index(number) for number in ("13800000003", "13800000002", "13800000001")]
    assert positions == sorted(positions)
    assert '<span class="zhenzi-badge zhenzi-status-failed">failed</span>' in html
    assert "template 1001 (9988, 5分钟)" in html
    assert "110 Wrong appSecret" in html
    assert "reset in the console" in html  # the hint, as a tooltip


def test_message_list_shows_times_to_the_second_in_the_local_time_zone(admin_client):
    utc = timezone.get_fixed_timezone(0)
    make_message(created_at=datetime(2026, 5, 1, 0, 3, 27, tzinfo=utc))  # 08:03:27 in Shanghai
    for language in ("en", "zh-hans"):
        response = admin_client.get(MESSAGES_URL, headers={"accept-language": language})
        html = response.content.decode()
        assert '<span class="zhenzi-date">2026-05-01</span> 08:03:27' in html
        assert "midnight" not in html and "a.m." not in html


def test_message_list_cuts_long_texts_and_keeps_them_whole_in_the_tooltip(admin_client):
    text = "【测试】" + "很长的一条通知，" * 30
    reason = "Gave up after 5 attempts: " + "The provider never received it."
    make_message(text=text, status=Status.FAILED, error_text=reason)
    html = admin_client.get(MESSAGES_URL).content.decode()
    shown = re.search(r'<span class="zhenzi-clip" title="([^"]*)">([^<]*)</span>', html)
    assert shown.group(1) == text
    assert shown.group(2) == text[: history.CONTENT_EXCERPT_LENGTH - 1] + "…"
    assert f'<span class="zhenzi-clip" title="{reason}">{reason}</span>' in html


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (7, "7"),
        (1.5, "1.5"),
        (True, "true"),
        (Value(None, JSONField()), "null"),
        ("99", '"99"'),
        ({"code": "9988"}, '{"code": "9988"}'),
        ([9988, ["15分钟"]], '[9988, ["15分钟"]]'),
    ],
)
def test_a_row_with_corrupted_template_parameters_is_shown_as_stored(admin_client, stored, shown):
    message = make_message(text="", template_id="1001", template_params=["9988"])
    Message.objects.filter(pk=message.pk).update(template_params=stored)  # behind the app's back

    listed = admin_client.get(MESSAGES_URL)
    page = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/")

    assert (listed.status_code, page.status_code) == (200, 200)
    assert escape(f"template 1001 ({shown})") in listed.content.decode()
    if shown != "null":  # the page shows null as the admin's empty value
        assert escape(shown) in page.content.decode()


def test_last_error_is_explained_in_chinese_for_zh_hans(admin_client):
    make_message(status=Status.FAILED, error_code=108, error_text="Zhenzi error 108")
    html = admin_client.get(MESSAGES_URL, headers={"accept-language": "zh-hans"}).content.decode()
    assert "108 短信余额不足" in html
    assert "需要到用户中心进行充值" in html


def test_stored_error_text_is_translated_in_the_chinese_list(admin_client):
    stale = make_message(status=Status.SENDING, claimed_at=timezone.now() - timedelta(hours=1))
    assert services.expire_stale_claims() == 1  # the services write the reason, in English
    stale.refresh_from_db()
    english = stale.error_text

    chinese_list = admin_client.get(MESSAGES_URL, **ZH).content.decode()
    english_list = admin_client.get(MESSAGES_URL).content.decode()

    assert "工作进程领取该短信后超时，未记录到服务商的应答。" in chinese_list
    assert english not in chinese_list
    assert english in english_list


def test_message_page_translates_the_stored_error_and_keeps_it_as_stored(admin_client):
    gave_up = Reason.of(ErrorKind.GAVE_UP, count=5, reason=Reason.of(ErrorKind.NEVER_RECEIVED))
    message = make_message(status=Status.FAILED, **gave_up.fields())
    url = f"{MESSAGES_URL}{message.pk}/change/"

    chinese = admin_client.get(url, **ZH).content.decode()
    english = admin_client.get(url).content.decode()

    assert "已尝试 5 次，不再重试：服务商未收到这条短信。" in chinese
    assert "原始记录：Gave up after 5 attempts: The provider never received it." in chinese
    assert "Gave up after 5 attempts: The provider never received it." in english
    assert "As stored" not in english


def test_error_code_explanation_is_punctuated_for_the_language(admin_client):
    message = make_message(status=Status.FAILED, error_code=108)
    url = f"{MESSAGES_URL}{message.pk}/change/"
    chinese = admin_client.get(url, **ZH).content.decode()
    english = admin_client.get(url).content.decode()
    assert "短信余额不足。需要到用户中心进行充值。" in chinese
    assert "短信余额不足. " not in chinese and "。。" not in chinese
    assert "Balance insufficient. Top up the account" in english


def test_message_page_title_names_the_status_in_the_language(admin_client):
    message = make_message(status=Status.FAILED)
    url = f"{MESSAGES_URL}{message.pk}/change/"
    english = admin_client.get(url).content.decode()
    chinese = admin_client.get(url, **ZH).content.decode()
    assert f"13800138000 {message.message_id} (failed)" in english
    assert f"13800138000 {message.message_id}（发送失败）" in chinese
    assert "(failed)" not in chinese


def test_message_list_filters_and_search(admin_client):
    now = timezone.now()
    failed = make_message(number="13800000001", status=Status.FAILED)
    template = make_message(number="13800000002", text="", template_id="1002")
    old = make_message(
        number="13800000003", text="【测试】取件码", created_at=now - timedelta(days=40)
    )

    def numbers(query: str) -> set[str]:
        response = admin_client.get(f"{MESSAGES_URL}?{query}")
        assert response.status_code == 200
        return {message.number for message in response.context["cl"].result_list}

    assert numbers("status__exact=failed") == {failed.number}
    assert numbers("template=1002") == {template.number}
    assert numbers("template=%28text%29") == {failed.number, old.number}
    since = urlencode({"created_at__gte": timezone.localtime(now - timedelta(days=7))})
    assert numbers(since) == {failed.number, template.number}
    assert numbers("q=0000003") == {old.number}
    assert numbers(f"q={template.message_id}") == {template.number}
    assert numbers("q=取件码") == {old.number}


def test_template_filter_offers_the_template_ids(admin_client):
    make_message(text="", template_id="1001")
    make_message(text="", template_id="2002")
    html = admin_client.get(MESSAGES_URL).content.decode()
    assert "?template=1001" in html
    assert "?template=2002" in html


def test_message_page_shows_every_field_read_only_with_its_reports(admin_client):
    message = make_message(
        status=Status.DELIVERED,
        error_code=1000,
        error_text="an earlier attempt failed",
        provider_answer={"code": 0, "data": "发送成功"},
        provider_status="DELIVRD",
    )
    services.apply_report(services.ReportData(message.message_id, "DELIVRD", message.number))

    response = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/")

    html = response.content.decode()
    assert message.message_id in html
    assert "an earlier attempt failed" in html
    assert "Unknown system error at the provider" in html  # the error code explained
    assert "发送成功" in html
    assert "DELIVRD" in html
    assert 'name="number"' not in html  # nothing to edit
    assert 'name="_save"' not in html
    inline = response.context["inline_admin_formsets"][0]
    assert [form.original.raw_status for form in inline] == ["DELIVRD"]


def test_message_page_shows_empty_fields_as_the_admins_empty_value_and_times_to_the_second(
    admin_client,
):
    utc = timezone.get_fixed_timezone(0)
    message = make_message(
        created_at=datetime(2026, 5, 1, 0, 3, 27, tzinfo=utc),  # 08:03:27 in Shanghai
        polled_at=datetime(2026, 5, 1, 0, 4, 5, tzinfo=utc),
    )

    response = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/")

    html = response.content.decode()
    readonly = re.findall(r'<div class="readonly">(.*?)</div>', html, re.S)
    assert "None" not in readonly
    for name in ("error_explanation", "error_description", "sent_at_column"):
        cell = re.search(rf'field-{name}.*?<div class="readonly">(.*?)</div>', html, re.S)
        assert cell.group(1) == "-", name
    assert '<span class="zhenzi-date">2026-05-01</span> 08:03:27' in html
    assert '<span class="zhenzi-date">2026-05-01</span> 08:04:05' in html
    assert "last asked the provider about it." in html  # the field's help text is kept


def test_report_code_and_refusal_pages_show_times_to_the_second(admin_client):
    from django_zhenzi.models import RateLimitRefusal, VerificationCode

    moment = datetime(2026, 5, 1, 0, 3, 27, tzinfo=timezone.get_fixed_timezone(0))
    pages = {
        REPORTS_URL: StatusReport.objects.create(reported_message_id="m1", received_at=moment),
        "/admin/django_zhenzi/verificationcode/": VerificationCode.objects.create(
            number="13800138000", purpose="login", code_hash="x", expires_at=moment
        ),
        "/admin/django_zhenzi/ratelimitrefusal/": RateLimitRefusal.objects.create(
            limit="number_hour", subject="13800138000", hour=moment, last_refused_at=moment
        ),
    }
    for url, row in pages.items():
        html = admin_client.get(f"{url}{row.pk}/change/").content.decode()
        assert '<span class="zhenzi-date">2026-05-01</span> 08:03:27' in html, url
        assert ">None<" not in html, url


def test_message_list_shows_the_providers_word_as_the_last_error_of_an_undelivered_message(
    admin_client,
):
    make_message(status=Status.UNDELIVERED, provider_status="MK:0005")
    make_message(status=Status.DELIVERED, provider_status="DELIVRD", number="13800000009")

    html = admin_client.get(MESSAGES_URL).content.decode()

    cells = re.findall(r'<td class="field-last_error">(.*?)</td>', html, re.S)
    assert len(cells) == 2
    assert sum("MK:0005" in cell for cell in cells) == 1
    assert not any("DELIVRD" in cell for cell in cells)  # a delivered message has no error


# --- Status counts and speed ---------------------------------------------------------------------


def test_status_counts_for_the_last_day_and_week_above_the_list(admin_client):
    now = timezone.now()
    make_message(status=Status.DELIVERED, created_at=now - timedelta(hours=1))
    make_message(status=Status.DELIVERED, created_at=now - timedelta(hours=2))
    make_message(status=Status.FAILED, created_at=now - timedelta(days=3))
    make_message(status=Status.FAILED, created_at=now - timedelta(days=30))

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(MESSAGES_URL)

    day, week = response.context["status_summary"].rows
    assert {(cell.count) for cell in day.cells} == {0, 2}
    assert day.total.count == 2
    assert week.total.count == 3
    counts = dict(zip([status.value for status in Status], week.cells, strict=True))
    assert counts["delivered"].count == 2
    assert counts["failed"].count == 1
    grouped = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert len(grouped) == 2
    # Each count links to the list filtered to it.
    followed = admin_client.get(counts["failed"].url)
    assert [m.status for m in followed.context["cl"].result_list] == [Status.FAILED]


def test_status_summary_is_one_table_above_the_list_with_a_count_under_each_badge(admin_client):
    make_message(status=Status.DELIVERED)
    html = admin_client.get(MESSAGES_URL).content.decode()
    summary = re.search(r'<div class="module zhenzi-summary">.*?</div>', html, re.S).group(0)
    # Above the changelist, not squeezed beside the filters.
    assert html.index('class="module zhenzi-summary"') < html.index('id="changelist"')
    header, *rows = re.findall(r"<tr>(.*?)</tr>", summary, re.S)
    assert header.count("zhenzi-badge") == len(Status)
    assert len(rows) == 2
    for row in rows:
        assert row.count("<td") == len(Status) + 1  # one count per badge, and the total
    assert '<span class="zhenzi-zero">0</span>' in summary  # zero is not a link
    assert "Messages per status, by creation time" in summary


def test_status_summary_and_list_when_there_are_no_messages(admin_client):
    html = admin_client.get(MESSAGES_URL).content.decode()
    assert html.count('<span class="zhenzi-zero">0</span>') == 2 * (len(Status) + 1)
    assert "0 messages" in html


def make_varied_messages(count: int) -> None:
    now = timezone.now()
    rows = []
    for index in range(count):
        kind = index % 4
        rows.append(
            Message(
                number=f"138{index:08d}",
                text="" if kind == 1 else f"【测试】第{index}条",
                template_id="1001" if kind == 1 else "",
                template_params=["1", "2"] if kind == 1 else [],
                status=[Status.SENT, Status.DELIVERED, Status.FAILED, Status.QUEUED][kind],
                error_code=110 if kind == 2 else None,
                error_text="refused" if kind == 2 else "",
                created_at=now - timedelta(minutes=index),
            )
        )
    Message.objects.bulk_create(rows)
    for message in Message.objects.filter(status=Status.DELIVERED)[:5]:
        StatusReport.objects.create(message=message, reported_message_id=message.message_id)


def test_message_list_query_count_does_not_grow_with_the_rows(admin_client):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(f"{MESSAGES_URL}?all=")
        assert response.status_code == 200
        return len(response.context["cl"].result_list), len(queries)

    make_varied_messages(10)
    shown_few, few = queries_for_list()
    make_varied_messages(190)
    shown_many, many = queries_for_list()

    assert (shown_few, shown_many) == (10, 200)
    assert many == few


def test_report_list_query_count_does_not_grow_with_the_rows(admin_client):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(f"{REPORTS_URL}?all=")
        assert response.status_code == 200
        return len(queries)

    def add_reports(count: int) -> None:
        message = make_message()
        for index in range(count):
            StatusReport.objects.create(
                message=message if index % 2 else None, reported_message_id=f"id-{index}"
            )

    add_reports(10)
    few = queries_for_list()
    add_reports(190)
    assert queries_for_list() == few


def test_lists_skip_the_full_count():
    for model_admin in (history.MessageAdmin, reports.StatusReportAdmin):
        assert model_admin.show_full_result_count is False
        assert model_admin.paginator is pagination.EstimatedCountPaginator


@pytest.mark.skipif(connection.vendor != "postgresql", reason="estimates come from PostgreSQL")
def test_big_unfiltered_list_uses_the_planners_estimate(admin_client, monkeypatch):
    make_varied_messages(40)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Message._meta.db_table}")
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 10)

    with CaptureQueriesContext(connection) as unfiltered:
        response = admin_client.get(MESSAGES_URL)
    with CaptureQueriesContext(connection) as filtered:
        admin_client.get(f"{MESSAGES_URL}?status__exact=failed")

    assert response.context["cl"].result_count == 40
    sqls = [q["sql"] for q in unfiltered.captured_queries]
    assert any("reltuples" in sql for sql in sqls)
    # No full count of the table (the health banner's counts are filtered by status, indexed).
    full_counts = [sql for sql in sqls if "COUNT(*)" in sql and "zhenzi_message" in sql]
    assert not [sql for sql in full_counts if "WHERE" not in sql]
    assert any("COUNT(*)" in q["sql"] for q in filtered.captured_queries)


def test_small_or_other_database_lists_are_counted_exactly():
    make_varied_messages(3)
    assert pagination.EstimatedCountPaginator(Message.objects.all(), 100).count == 3


# --- Actions -------------------------------------------------------------------------------------


def run_action(client: Client, action: str, messages: list[Message]):
    return client.post(
        MESSAGES_URL,
        {"action": action, "_selected_action": [m.pk for m in messages]},
        follow=True,
    )


def test_resend_requeues_failed_messages_and_says_which_were_skipped(login_with):
    failed = make_message(status=Status.FAILED, error_code=108, attempts=5)
    delivered = make_message(status=Status.DELIVERED)
    client = login_with("view_message", "send_message")

    response = run_action(client, "resend_failed", [failed, delivered])

    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert failed.status == Status.QUEUED
    assert failed.next_attempt_at <= timezone.now()
    assert failed.attempts == 5  # history kept
    assert delivered.status == Status.DELIVERED
    assert messages_of(response) == [
        "1 failed message was queued to be sent again.",
        "1 message was skipped: only failed messages can be resent.",
    ]


def test_resend_handles_big_selections_in_chunks_and_signals_each_change(admin_client, monkeypatch):
    monkeypatch.setattr(services.maintenance, "REQUEUE_CHUNK_SIZE", 2)
    failed = [make_message(status=Status.FAILED) for _ in range(5)]
    changes = []

    def record(sender, message, old_status, new_status, **kwargs):
        changes.append((message.pk, old_status, new_status))

    signals.status_changed.connect(record)
    try:
        run_action(admin_client, "resend_failed", failed)
    finally:
        signals.status_changed.disconnect(record)

    assert set(Message.objects.values_list("status", flat=True)) == {Status.QUEUED}
    assert sorted(changes) == [(m.pk, Status.FAILED, Status.QUEUED) for m in failed]


def test_resent_messages_are_sent_by_the_workers(zhenzi, admin_client):
    failed = make_message(status=Status.FAILED, error_code=108)
    run_action(admin_client, "resend_failed", [failed])
    services.run_workers()
    failed.refresh_from_db()
    assert failed.status == Status.SENT
    assert zhenzi.accepted_count(failed.message_id) == 1


def test_resend_needs_the_send_permission(login_with):
    failed = make_message(status=Status.FAILED)
    client = login_with("view_message", "change_message")

    page = client.get(MESSAGES_URL).content.decode()
    response = run_action(client, "resend_failed", [failed])

    assert 'value="resend_failed"' not in page
    failed.refresh_from_db()
    assert failed.status == Status.FAILED
    assert messages_of(response) == ["No action selected."]


def sent_through_sandbox(numbers: list[str], capture) -> list[Message]:
    with capture(execute=True):
        rows = services.create_messages(numbers, services.Content(text="【测试】通知"), queue=False)
    return [Message.objects.get(message_id=row.message_id) for row in rows]


def test_refresh_status_asks_the_provider(zhenzi, login_with, django_capture_on_commit_callbacks):
    delivered, undelivered = sent_through_sandbox(
        ["13800138000", "13800138004"], django_capture_on_commit_callbacks
    )
    queued = make_message(status=Status.QUEUED)
    client = login_with("view_message", "change_message")

    response = run_action(client, "refresh_status", [delivered, undelivered, queued])

    assert Message.objects.get(pk=delivered.pk).status == Status.DELIVERED
    assert Message.objects.get(pk=undelivered.pk).status == Status.UNDELIVERED
    assert StatusReport.objects.filter(source=StatusReport.Source.POLL).count() == 2
    assert messages_of(response) == [
        "Asked Zhenzi about 2 messages; 2 now have a final status.",
        "1 message was skipped: only sent messages and messages of unknown outcome can be "
        "refreshed.",
    ]


def test_refresh_status_when_the_provider_is_down_warns(
    zhenzi, settings, admin_client, django_capture_on_commit_callbacks
):
    sent = sent_through_sandbox(["13800138000", "13900139000"], django_capture_on_commit_callbacks)
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}

    response = run_action(admin_client, "refresh_status", sent)

    assert response.status_code == 200
    (warning,) = messages_of(response)
    assert warning.startswith("Zhenzi could not be reached")
    assert warning.endswith("2 messages were not checked.")
    assert {m.status for m in Message.objects.all()} == {Status.SENT}


def test_refresh_status_when_the_provider_refuses_explains_the_code(
    zhenzi, admin_client, django_capture_on_commit_callbacks
):
    sent = sent_through_sandbox(["13800138000"], django_capture_on_commit_callbacks)
    zhenzi.app_secret = "changed-in-the-console"

    response = run_action(admin_client, "refresh_status", sent)

    (warning,) = messages_of(response)
    assert "error 110: Wrong appSecret" in warning
    assert APP_SECRET not in response.content.decode()


def test_refresh_status_checks_a_bounded_number_at_a_time(
    zhenzi, admin_client, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(admin_actions, "REFRESH_LIMIT", 1)
    sent = sent_through_sandbox(["13800138000", "13900139000"], django_capture_on_commit_callbacks)

    response = run_action(admin_client, "refresh_status", sent)

    assert zhenzi.requests_by_endpoint["/smslog/findSmsByMessageId.do"] == 1
    assert messages_of(response)[-1] == (
        "Only 1 messages are checked at a time; 1 was left: select it again to check it."
    )


def test_refresh_status_needs_the_change_permission(zhenzi, login_with):
    sent = make_message(status=Status.SENT)
    client = login_with("view_message", "send_message")
    assert 'value="refresh_status"' not in client.get(MESSAGES_URL).content.decode()
    run_action(client, "refresh_status", [sent])
    assert zhenzi.requests_total == 0


# --- Status reports ------------------------------------------------------------------------------


def test_report_list_shows_and_filters_orphans(admin_client):
    message = make_message()
    linked = StatusReport.objects.create(
        message=message, reported_message_id=message.message_id, raw_status="DELIVRD"
    )
    orphan = StatusReport.objects.create(reported_message_id="nobody-knows", raw_status="fail")

    def listed(query: str = "") -> list[int]:
        response = admin_client.get(f"{REPORTS_URL}?{query}")
        return [report.pk for report in response.context["cl"].result_list]

    assert set(listed()) == {linked.pk, orphan.pk}
    assert listed("orphan=yes") == [orphan.pk]
    assert listed("orphan=no") == [linked.pk]
    assert listed("q=nobody-knows") == [orphan.pk]
    html = admin_client.get(REPORTS_URL).content.decode()
    assert f'href="{MESSAGES_URL}{message.pk}/change/">#{message.pk}</a>' in html
    assert '<span class="zhenzi-orphan">orphan</span>' in html  # in place of a link
    assert html.count('class="zhenzi-orphan"') == 1


def test_report_list_shows_the_status_as_understood_beside_the_providers_word(admin_client):
    services.apply_report(services.ReportData(make_message().message_id, "DELIVRD", ""))
    StatusReport.objects.create(reported_message_id="nobody", raw_status="MYSTERY")
    html = admin_client.get(REPORTS_URL).content.decode()
    assert (
        '<span class="zhenzi-badge zhenzi-status-delivered">delivered</span> '
        '<span class="zhenzi-raw">DELIVRD</span>'
    ) in html
    assert ' <span class="zhenzi-raw">MYSTERY</span>' in html  # not understood: no badge


def test_reports_are_read_only(admin_client):
    assert admin_client.get(f"{REPORTS_URL}add/").status_code == 403
    report = StatusReport.objects.create(reported_message_id="abc")
    html = admin_client.get(f"{REPORTS_URL}{report.pk}/change/").content.decode()
    assert 'name="reported_message_id"' not in html


# --- Balance -------------------------------------------------------------------------------------


def test_balance_page_shows_the_live_balance_and_records_it_once_while_cached(zhenzi, login_with):
    zhenzi.balance = 5000
    client = login_with("view_balance")

    first = client.get(BALANCE_URL)
    second = client.get(BALANCE_URL)

    for response in (first, second):
        assert response.status_code == 200
        assert "5000 messages left" in response.content.decode()
    assert zhenzi.requests_by_endpoint["/account/balance.do"] == 1
    assert list(BalanceSnapshot.objects.values_list("balance", flat=True)) == [5000]
    assert not first.context["reading"].cached
    assert second.context["reading"].cached
    assert not first.context["low"]


def test_balance_page_reads_again_on_request(zhenzi, admin_client):
    admin_client.get(BALANCE_URL)
    zhenzi.balance = 4321
    response = admin_client.post(BALANCE_URL)
    assert "4321 messages left" in response.content.decode()
    assert BalanceSnapshot.objects.count() == 2


def test_balance_cache_time_is_a_setting(zhenzi, settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "BALANCE_CACHE_SECONDS": 0}
    admin_client.get(BALANCE_URL)
    admin_client.get(BALANCE_URL)
    assert zhenzi.requests_by_endpoint["/account/balance.do"] == 2


def test_low_balance_warns(zhenzi, settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "LOW_BALANCE_THRESHOLD": 100}
    zhenzi.balance = 99
    response = admin_client.get(BALANCE_URL)
    assert response.context["low"]
    assert "The balance is below 100 messages" in response.content.decode()


def test_balance_page_when_the_provider_refuses(zhenzi, admin_client):
    BalanceSnapshot.objects.create(balance=42, recorded_at=timezone.now() - timedelta(hours=1))
    zhenzi.app_secret = "changed-in-the-console"

    response = admin_client.get(BALANCE_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "The balance could not be read from Zhenzi." in html
    assert "error 110: Wrong appSecret" in html
    assert "Last known balance: 42" in html
    assert "The balance is below 100 messages" in html  # the last known one is low
    assert APP_SECRET not in html
    assert BalanceSnapshot.objects.count() == 1
    assert cache.get(services.balance_cache_key()) is None  # errors are not kept


def test_balance_page_when_the_provider_is_down(settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}
    response = admin_client.get(BALANCE_URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Zhenzi could not be reached" in html
    assert "No balance has been recorded yet." in html


def test_balance_page_when_the_provider_is_down_says_what_to_check(settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}
    for language, check, start in [
        ("en", "Check ZHENZI[&#x27;API_URL&#x27;]", "manage.py zhenzi_sandbox"),
        ("zh-hans", "请检查 ZHENZI[&#x27;API_URL&#x27;]", "manage.py zhenzi_sandbox"),
    ]:
        response = admin_client.get(BALANCE_URL, headers={"accept-language": language})
        html = response.content.decode()
        assert check in html and start in html, language
        assert f"{CLOSED_PORT_URL}/account/balance.do" in html
        # A balance read sends nothing: the client's "nothing was sent" is not repeated.
        assert "nothing was sent" not in html and "请求未发出" not in html


@pytest.mark.django_db(transaction=True)
def test_send_form_says_what_to_check_when_the_provider_cannot_be_reached(settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}
    response = admin_client.post(
        SEND_URL, send_form(mode="now", numbers="13800138000", message="【测试】你好")
    )
    said = messages_of(response)
    assert Message.objects.get().status != Status.SENT
    (unreachable,) = [text for text in said if "could not be reached" in text]
    assert unreachable.startswith(
        f"Zhenzi could not be reached at {CLOSED_PORT_URL}/sms/send.do, nothing was sent ("
    )
    assert "Check ZHENZI['API_URL']" in unreachable


def test_refresh_status_when_the_provider_is_down_says_nothing_of_sending(
    zhenzi, settings, admin_client, django_capture_on_commit_callbacks
):
    sent = sent_through_sandbox(["13800138000"], django_capture_on_commit_callbacks)
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}
    (warning,) = messages_of(run_action(admin_client, "refresh_status", sent))
    assert "Check ZHENZI['API_URL']" in warning
    assert "nothing was sent" not in warning


def test_balance_page_when_not_configured(settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "APP_ID": ""}
    response = admin_client.get(BALANCE_URL)
    assert response.status_code == 200
    assert "Zhenzi is not configured" in response.content.decode()


def test_balance_page_with_a_backend_without_balance(settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    response = admin_client.get(BALANCE_URL)
    assert response.status_code == 200
    assert "has no Zhenzi account to ask" in response.content.decode()


def test_balance_page_lists_the_latest_readings_to_the_second(zhenzi, admin_client):
    utc = timezone.get_fixed_timezone(0)
    BalanceSnapshot.objects.create(
        balance=700, recorded_at=datetime(2026, 5, 1, 16, 0, 5, tzinfo=utc)
    )
    html = admin_client.get(BALANCE_URL).content.decode()
    assert "<td>2026-05-02 00:00:05</td>" in html  # Asia/Shanghai
    assert '<td class="zhenzi-number">700</td>' in html


def test_balance_page_with_a_single_reading_draws_one_dot(zhenzi, admin_client):
    html = admin_client.get(BALANCE_URL).content.decode()
    svg = re.search(r'<svg class="zhenzi-chart".*?</svg>', html, re.S).group(0)
    assert svg.count("<circle") == 1
    assert "<polyline" not in svg


def test_balance_page_draws_the_history(zhenzi, admin_client):
    now = timezone.now()
    for hours, balance in ((3, 900), (2, 700), (1, 650)):
        BalanceSnapshot.objects.create(balance=balance, recorded_at=now - timedelta(hours=hours))
    zhenzi.balance = 600

    html = admin_client.get(BALANCE_URL).content.decode()

    svg = re.search(r'<svg class="zhenzi-chart".*?</svg>', html, re.S).group(0)
    assert svg.count("<circle") == 4
    assert "4 readings" in svg


def test_balance_page_with_a_balance_above_32_bits(zhenzi, admin_client):
    BalanceSnapshot.objects.create(balance=2**32, recorded_at=timezone.now() - timedelta(hours=1))
    zhenzi.balance = 2**31 + 7  # an IntegerField overflows on PostgreSQL

    response = admin_client.get(BALANCE_URL)

    assert response.status_code == 200
    assert f"{2**31 + 7} messages left" in response.content.decode()
    assert f'<td class="zhenzi-number">{2**32}</td>' in response.content.decode()
    assert BalanceSnapshot.objects.order_by("-recorded_at").first().balance == 2**31 + 7


# --- The balance chart ---------------------------------------------------------------------------


def parse_svg(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314 (our own output)


def moments(count: int) -> list[datetime]:
    start = timezone.now() - timedelta(days=count)
    return [start + timedelta(days=index) for index in range(count)]


def test_chart_without_snapshots_is_empty():
    assert charts.balance_chart([]) == ""


def test_chart_with_one_snapshot_draws_a_dot():
    svg = parse_svg(charts.balance_chart([(timezone.now(), 500)]))
    namespace = {"svg": "http://www.w3.org/2000/svg"}
    assert svg.findall(".//polyline") == [] and svg.findall(".//svg:polyline", namespace) == []
    (dot,) = svg.findall(".//circle")
    assert float(dot.get("cx")) == pytest.approx((charts.LEFT + charts.WIDTH - charts.RIGHT) / 2)


def test_chart_with_many_snapshots_draws_a_scaled_line():
    values = [10_000 - 37 * index for index in range(200)]
    svg = parse_svg(charts.balance_chart(list(zip(moments(200), values, strict=True))))
    (line,) = svg.findall(".//polyline")
    points = [tuple(map(float, pair.split(","))) for pair in line.get("points").split()]
    assert len(points) == 200
    xs = [x for x, _y in points]
    ys = [y for _x, y in points]
    assert xs == sorted(xs)
    assert xs[0] == charts.LEFT and xs[-1] == charts.WIDTH - charts.RIGHT
    assert ys == sorted(ys)  # the balance falls, so the line goes down the page
    assert all(charts.TOP <= y <= charts.HEIGHT - charts.BOTTOM for y in ys)
    assert svg.findall(".//circle") == []  # too many points for dots
    labels = [text.text for text in svg.findall(".//text") if text.text]
    assert labels[0] == "0" and labels[-1] == "10000"  # 10,000 down to 2,637, from zero


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 0, [0, 1]),
        (500, 500, [0, 200, 400, 600]),
        (3, 4, [3, 4]),
        (9_990, 10_000, [9_990, 9_995, 10_000]),
        (0, 1_234_567, [0, 500_000, 1_000_000, 1_500_000]),
    ],
)
def test_chart_value_axis_uses_round_numbers(low, high, expected):
    assert charts.value_ticks(low, high) == expected


def test_chart_always_marks_the_threshold():
    points = list(zip(moments(3), [300, 150, 50], strict=True))
    assert "zhenzi-chart-threshold" in charts.balance_chart(points, threshold=100)
    above = parse_svg(charts.balance_chart(points, threshold=10_000))
    assert above.find(".//line[@class='zhenzi-chart-threshold']") is not None
    values = [text.text for text in above.findall(".//text[@text-anchor='end']")]
    assert "10000" in values  # the axis reaches up to the threshold


def chart_values(svg: ElementTree.Element) -> list[str]:
    """The balance axis's labels, bottom to top."""
    labels = svg.findall(".//text[@class='zhenzi-chart-label'][@text-anchor='end']")
    return [text.text for text in labels if text.text]


def chart_times(svg: ElementTree.Element) -> list[str]:
    """The time axis's labels, each as its lines joined by a space."""
    return [
        " ".join(span.text for span in text.findall("tspan"))
        for text in svg.findall(".//text")
        if text.findall("tspan")
    ]


def test_chart_y_axis_starts_at_zero_and_reaches_the_threshold():
    one_message = list(zip(moments(2), [1000, 999], strict=True))
    svg = parse_svg(charts.balance_chart(one_message, threshold=100))
    assert chart_values(svg)[0] == "0"
    (line,) = svg.findall(".//polyline")
    (_x1, y1), (_x2, y2) = (map(float, pair.split(",")) for pair in line.get("points").split())
    assert 0 < y2 - y1 < 1  # one message less is a small step, not the whole height
    threshold = svg.find(".//line[@class='zhenzi-chart-threshold']")
    assert threshold is not None

    below = list(zip(moments(2), [40, 30], strict=True))
    low = parse_svg(charts.balance_chart(below, threshold=100))
    assert low.find(".//line[@class='zhenzi-chart-threshold']") is not None
    assert chart_values(low)[0] == "0" and int(chart_values(low)[-1]) >= 100

    flat = parse_svg(charts.balance_chart(list(zip(moments(2), [0, 0], strict=True))))
    assert chart_values(flat)[0] == "0" and int(chart_values(flat)[-1]) >= charts.MIN_VALUE_SPAN


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(minutes=2), 5),  # to the second: 30 s apart
        (timedelta(seconds=2), 3),  # 0.5 s apart: only three different seconds
        (timedelta(days=3), 5),
    ],
)
def test_chart_time_labels_never_repeat(span, expected):
    start = timezone.now().replace(microsecond=0)
    svg = parse_svg(charts.balance_chart([(start, 900), (start + span, 899)]))
    labels = chart_times(svg)
    assert len(labels) == expected
    assert len(set(labels)) == len(labels)
    if span < timedelta(days=1):
        times = [label.split()[-1] for label in labels]
        assert len(set(times)) == len(times)


@pytest.mark.parametrize("grouping", [False, True])
def test_chart_and_balance_page_write_numbers_alike(zhenzi, settings, admin_client, grouping):
    settings.USE_THOUSAND_SEPARATOR = grouping
    zhenzi.balance = 12345
    BalanceSnapshot.objects.create(balance=23456, recorded_at=timezone.now() - timedelta(hours=1))

    html = admin_client.get(BALANCE_URL).content.decode()

    written = "12,345" if grouping else "12345"
    assert f"{written} messages left" in html
    assert f'<td class="zhenzi-number">{written}</td>' in html
    svg = parse_svg(re.search(r'<svg class="zhenzi-chart".*?</svg>', html, re.S).group(0))
    values = chart_values(svg)
    assert values[-1] == ("30,000" if grouping else "30000")
    assert all(("," in value) == (grouping and len(value) > 3) for value in values)


def test_chart_labels_follow_the_active_language():
    points = list(zip(moments(3), [300, 150, 50], strict=True))
    with translation.override("zh-hans"):
        svg = charts.balance_chart(points)
    assert "年" in svg  # Django's Chinese date format
    parse_svg(svg)


def test_chart_escapes_its_text(monkeypatch):
    monkeypatch.setattr(charts, "format_value", lambda value: f"<b>{value}</b> & co")
    svg = charts.balance_chart(list(zip(moments(2), [1, 2], strict=True)))
    assert "<b>" not in svg
    assert "&lt;b&gt;1&lt;/b&gt; &amp; co" in svg
    parse_svg(svg)


# --- The send form -------------------------------------------------------------------------------


def test_split_numbers_accepts_lines_commas_and_spaces():
    text = "13800138000\n13900139000, 13700137000；13600136000\n138 0013 8001\n+86 13500135000 x"
    assert split_numbers(text) == [
        "13800138000",
        "13900139000",
        "13700137000",
        "13600136000",
        "138 0013 8001",
        "+86",
        "13500135000",
        "x",
    ]


def send_form(**fields) -> dict[str, str]:
    return {"mode": "queue", "message": "【测试】通知", "template_id": "", **fields}


def test_send_form_renders_with_the_live_counter(login_with):
    html = login_with("send_message").get(SEND_URL).content.decode()
    assert 'data-zhenzi-limit="1000"' in html
    assert "django_zhenzi/send_form.js" in html
    assert "<span data-zhenzi-count-value>0</span> of 1000 characters" in html


def test_send_form_choices_use_the_admins_radio_list(login_with):
    html = login_with("send_message").get(SEND_URL).content.decode()
    # The admin's forms.css gives labels inside "radiolist" their own width, not 160px.
    assert '<div id="id_mode" class="radiolist">' in html


def test_send_form_queues_valid_numbers_and_lists_the_invalid(login_with):
    client = login_with("send_message", "view_message")
    numbers = "13800138000\n12345, 13900139000\n13800138000 not-a-number"

    response = client.post(SEND_URL, send_form(numbers=numbers))

    rows = Message.objects.order_by("number")
    assert [(m.number, m.status) for m in rows] == [
        ("13800138000", Status.QUEUED),
        ("13900139000", Status.QUEUED),
    ]
    assert messages_of(response) == [
        "2 messages were queued; the workers will send them.",
        "2 numbers are not mainland China mobile numbers and were not sent to: 12345, not-a-number",
        "1 repeated number was sent to only once.",
    ]
    assert response.status_code == 302
    listed = client.get(response.url).context["cl"].result_list
    assert {m.pk for m in listed} == {m.pk for m in rows}


def test_send_form_result_links_only_to_the_new_messages(login_with):
    make_message(number="13700137000")
    client = login_with("send_message", "view_message")
    response = client.post(SEND_URL, send_form(numbers="13800138000"))
    query = parse_qs(urlsplit(response.url).query)
    assert set(query) == {"created_at__gte", "created_at__lt"}
    listed = client.get(response.url).context["cl"].result_list
    assert [m.number for m in listed] == ["13800138000"]


# "Send now" sends once the data is committed; these tests run without a wrapping transaction, as
# the send view does even under ATOMIC_REQUESTS, so the page can tell what happened.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("atomic_requests", [False, True])
def test_send_form_sends_now_through_the_provider(zhenzi, login_with, monkeypatch, atomic_requests):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    client = login_with("send_message")
    response = client.post(SEND_URL, send_form(mode="now", numbers="13800138000 13900139000"))

    assert {m.status for m in Message.objects.all()} == {Status.SENT}
    assert sorted(m["number"] for m in zhenzi.messages) == ["13800138000", "13900139000"]
    assert messages_of(response) == ["2 of 2 messages were sent."]
    assert response.url == SEND_URL  # this user may not see the message list


def test_send_form_sends_a_template_with_parameters(
    zhenzi, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            SEND_URL,
            send_form(
                mode="now",
                numbers="13800138000",
                message="",
                template_id="1001",
                template_params="9988\n\n15分钟\n",
            ),
        )
    (sent,) = zhenzi.messages
    assert sent["templateParams"] == ["9988", "15分钟"]
    assert Message.objects.get().template_params == ["9988", "15分钟"]


@pytest.mark.django_db(transaction=True)
def test_send_form_reports_failures_of_sending_now(zhenzi, admin_client):
    response = admin_client.post(
        SEND_URL, send_form(mode="now", numbers="13800138000", message="", template_id="9999")
    )
    assert Message.objects.get().status == Status.FAILED
    assert messages_of(response) == ["1 message failed; its last error says why."]


def test_send_form_keeps_line_breaks_as_one_character(admin_client):
    admin_client.post(SEND_URL, send_form(numbers="13800138000", message="【测试】一\r\n二"))
    assert Message.objects.get().text == "【测试】一\n二"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"message": "【测试】" + "x" * 995 + "😀"}, "The text is 1001 characters long"),
        ({"numbers": "12345, abc"}, "None of these is a mainland China mobile number: 12345, abc"),
        ({"numbers": ""}, "This field is required."),
        ({"message": ""}, "Give a text to send, or a template ID."),
        ({"template_id": "1001"}, "Give either a text or a template ID, not both."),
        ({"template_params": "1"}, "Template parameters need a template ID."),
        (
            {"mode": "now", "numbers": " ".join(f"138{n:08d}" for n in range(MAX_SEND_NOW + 1))},
            f"Sending now is limited to {MAX_SEND_NOW} numbers",
        ),
    ],
)
def test_send_form_refuses_bad_input_and_stores_nothing(zhenzi, admin_client, fields, error):
    response = admin_client.post(SEND_URL, send_form(**{"numbers": "13800138000", **fields}))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Message.objects.count() == 0
    assert zhenzi.requests_total == 0


@pytest.mark.parametrize(
    ("language", "expected", "english"),
    [
        ("en", "“a b” is not a template ID: it must not hold spaces.", None),
        ("zh-hans", "“a b”不是有效的模板ID：模板ID不能包含空格。", "is not a template"),
    ],
)
def test_send_form_says_the_services_refusals_in_its_own_words(
    zhenzi, admin_client, language, expected, english
):
    response = admin_client.post(
        SEND_URL,
        send_form(numbers="13800138000", message="", template_id="a b"),
        headers={"accept-language": language},
    )
    html = response.content.decode()
    assert response.context["form"].errors == {"template_id": [expected]}
    assert expected in html
    assert english is None or english not in html
    assert "holds spaces" not in html  # the client's own English text
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "fields", "where", "expected"),
    [
        ("message", {"template_id": "1001"}, "__all__", "请填写短信内容或模板ID，不能同时填写。"),
        ("message", {"message": ""}, "__all__", "请填写要发送的短信内容或模板ID。"),
        ("message", {}, "message", "短信内容长 6 字，榛子云最多接受 1000 字。"),
        ("template_id", {}, "template_params", "填写模板参数时必须同时填写模板ID。"),
        ("template_params", {"template_id": "1"}, "template_params", "请以文本形式填写模板参数"),
        ("number", {}, "numbers", "不是中国大陆手机号码：-"),
        ("client_ip", {}, "__all__", "输入无效，发送已被拒绝；未保存任何短信。"),
    ],
)
def test_send_form_puts_each_input_error_on_its_field_in_chinese(field, fields, where, expected):
    form = SendForm(
        {"numbers": "13800138000", "mode": "queue", "message": "【测试】通知", **fields}
    )
    form.is_valid()
    with translation.override("zh-hans"):
        form.add_input_error(ZhenziInputError("Some English reason.", field=field))
        errors = [str(error) for error in form.errors[where]]
    assert any(error.startswith(expected) for error in errors), errors
    assert not any("English" in error for error in errors)


@pytest.mark.django_db(transaction=True)
def test_send_form_says_when_a_rate_limit_refuses(zhenzi, settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "LIMIT_ALL_SENDS": True, "LIMIT_NUMBER_PER_HOUR": 1}
    admin_client.post(SEND_URL, send_form(numbers="13800138000"))
    response = admin_client.post(SEND_URL, send_form(numbers="13800138000"))
    assert response.status_code == 200
    assert "Refused by the limit on" in response.content.decode()
    assert Message.objects.count() == 1


def test_send_form_counts_what_was_typed_when_shown_again(admin_client):
    response = admin_client.post(SEND_URL, send_form(numbers="bad", message="【测试】😀"))
    assert response.context["message_length"] == 6  # the emoji counts two


def test_send_form_needs_the_send_permission_to_post(login_with):
    response = login_with("view_message").post(SEND_URL, send_form(numbers="13800138000"))
    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_message_list_links_to_the_send_form_for_senders_only(login_with):
    assert SEND_URL in login_with("view_message", "send_message").get(MESSAGES_URL).content.decode()
    assert SEND_URL not in login_with("view_message").get(MESSAGES_URL).content.decode()


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


# --- Stored errors in the page's language (the catalogue itself: tests/project/test_reasons.py) ---


def test_a_refused_repeat_of_the_messageid_is_not_called_a_parameter_error(zhenzi, admin_client):
    message = send_sms("13800138000", "【测试】您的订单已发货", queue=True)
    with ZhenziClient(zhenzi.url, "test-app", APP_SECRET, timeout=2) as client:
        client.send(message.number, message.text, message_id=message.message_id)
    services.run_workers()  # the provider refuses the repeat: code 100, "messageId重复"
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.UNKNOWN, 100)

    for headers, said in [({}, "already used"), (ZH, "messageId 重复")]:
        listed = admin_client.get(MESSAGES_URL, **headers).content.decode()
        page = admin_client.get(f"{MESSAGES_URL}{message.pk}/change/", **headers)
        # The page shows the client's English as stored too (it says what code 100 means).
        shown = re.sub(r'<div class="zhenzi-stored">.*?</div>', "", page.content.decode())
        for html in (listed, shown):
            assert said in html
            assert "Parameter format error" not in html and "参数格式错误" not in html


def test_a_row_of_an_unknown_kind_shows_its_stored_text(admin_client):
    make_message(status=Status.FAILED, error_kind="from_a_later_version", error_text="Kept as is.")
    assert "Kept as is." in admin_client.get(MESSAGES_URL, **ZH).content.decode()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_chart_time_axis_is_compact_in_every_language(language):
    utc = timezone.get_fixed_timezone(0)
    start = datetime(2026, 5, 1, 16, 0, tzinfo=utc)  # 2026-05-02 00:00 in Shanghai
    points = [(start, 900), (start + timedelta(hours=8), 800)]
    with translation.override(language):
        svg = parse_svg(charts.balance_chart(points))
    labels = [span.text for span in svg.iter("{http://www.w3.org/2000/svg}tspan")]
    labels += [span.text for span in svg.iter("tspan")]
    assert labels[:2] == ["2026-05-02", "00:00"]
    assert labels[-1] == "08:00"
    assert labels.count("2026-05-02") == 1  # the date is written where it changes


# --- Verification codes --------------------------------------------------------------------------

CODES_URL = "/admin/django_zhenzi/verificationcode/"


def test_code_list_shows_and_filters_expired_and_exhausted_codes(zhenzi, settings, admin_client):
    from django_zhenzi.models import VerificationCode
    from django_zhenzi.verification import check_code, send_code

    settings.ZHENZI = {
        **settings.ZHENZI,
        "CODE_MAX_TRIES": 3,
        "CODE_MESSAGE": "【测试】您的验证码是{code}。",
    }
    now = timezone.now()
    exhausted = send_code("13800000001")
    for _try in range(3):
        assert not check_code("13800000001", "not-it")
    send_code("13800000002")  # active
    expired = send_code("13800000003")
    VerificationCode.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(seconds=1))
    used = VerificationCode.objects.create(
        number="13800000004", purpose="login", code_hash="x", expires_at=now, state="used"
    )
    assert VerificationCode.objects.filter(state="active").count() == 3  # as stored

    html = admin_client.get(CODES_URL).content.decode()

    badges = dict(
        re.findall(r'<td class="field-number">(\d+)</td>.*?zhenzi-code-(\w+)', html, re.S)
    )
    assert badges == {
        "13800000001": "out_of_tries",
        "13800000002": "active",
        "13800000003": "expired",
        "13800000004": "used",
    }
    assert ">out of tries</span>" in html and ">expired</span>" in html
    for state, number in [
        ("out_of_tries", exhausted.number),
        ("expired", expired.number),
        ("active", "13800000002"),
        ("used", used.number),
    ]:
        listed = admin_client.get(CODES_URL, {"state": state}).context["cl"].result_list
        assert [code.number for code in listed] == [number], state
    counted = admin_client.get(CODES_URL, {"_facets": "True"}).content.decode()
    assert "out of tries (1)" in counted and "expired (1)" in counted
    page = admin_client.get(f"{CODES_URL}{exhausted.pk}/change/").content.decode()
    assert ">out of tries</span>" in page
    chinese = admin_client.get(CODES_URL, **ZH).content.decode()
    assert "次数已用完" in chinese and "已过期" in chinese


@pytest.mark.parametrize("model", ["message", "statusreport", "verificationcode"])
def test_history_rows_cannot_be_deleted_from_the_admin(admin_client, model):
    from django_zhenzi.models import Message, StatusReport, VerificationCode

    row = {
        "message": lambda: Message.objects.create(number="13800138000", text="x"),
        "statusreport": lambda: StatusReport.objects.create(reported_message_id="m1"),
        "verificationcode": lambda: VerificationCode.objects.create(
            number="13800138000", purpose="login", code_hash="x", expires_at=timezone.now()
        ),
    }[model]()

    page = admin_client.get(reverse(f"admin:django_zhenzi_{model}_changelist"))
    response = admin_client.post(reverse(f"admin:django_zhenzi_{model}_delete", args=[row.pk]))

    assert "delete_selected" not in page.content.decode()
    assert response.status_code == 403
    assert type(row).objects.filter(pk=row.pk).exists()
