"""``{% sandbox_sms_for number as sms %}``: what the sandbox phone received for the newest code
sent to ``number``, for allauth's code pages (DEMO_SIGN_IN=allauth). None with real credentials."""

from __future__ import annotations

from django import template
from django.conf import settings

from demo.views import sandbox_phone
from django_zhenzi.models import VerificationCode

register = template.Library()


@register.simple_tag
def sandbox_sms_for(number: str | None) -> dict[str, str] | None:
    if not settings.USE_SANDBOX or not number:
        return None
    code = (
        VerificationCode.objects.select_related("sms")
        .filter(number=number)
        .order_by("-created_at", "-id")
        .first()
    )
    if code is None or code.sms is None or not code.sms.message_id:
        return {}
    return sandbox_phone(code.sms.message_id)
