"""The balance page and its chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone, translation

from django_zhenzi import services
from django_zhenzi.admin import chart as charts
from django_zhenzi.models import BalanceSnapshot, Message, Status
from tests.admin.pages import (
    APP_SECRET,
    BALANCE_URL,
    CLOSED_PORT_URL,
    LOCMEM,
    SEND_URL,
    messages_of,
    run_action,
    send_form,
    sent_through_sandbox,
)

pytestmark = pytest.mark.django_db


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
