"""The verification codes and rate-limit refusals pages, and the rows no one may delete."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from django_zhenzi.models import Message, StatusReport
from tests.admin.pages import (
    ZH,
)

pytestmark = pytest.mark.django_db


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
    from django_zhenzi.models import VerificationCode

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
