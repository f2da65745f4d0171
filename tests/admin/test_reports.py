"""The delivery-report list."""

from __future__ import annotations

import pytest

from django_zhenzi import services
from django_zhenzi.models import StatusReport
from tests.admin.pages import (
    MESSAGES_URL,
    REPORTS_URL,
    make_message,
)

pytestmark = pytest.mark.django_db


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
