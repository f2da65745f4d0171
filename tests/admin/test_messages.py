"""The message list and page: history, errors in the page's language, the status summary,
and the queries they make."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import JSONField, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from django_zhenzi import send_sms, services
from django_zhenzi.admin import messages as history
from django_zhenzi.admin import pagination, reports
from django_zhenzi.client import ZhenziClient
from django_zhenzi.models import Message, Status, StatusReport
from django_zhenzi.reasons import ErrorKind, Reason
from tests.admin.pages import (
    APP_SECRET,
    MESSAGES_URL,
    REPORTS_URL,
    ZH,
    make_message,
)

pytestmark = pytest.mark.django_db


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
