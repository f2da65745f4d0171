"""Verification codes in the admin, read-only. A code never shows: only its hash is stored, and
the hash is not displayed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from django_zhenzi.admin.base import ReadOnlyModelAdmin
from django_zhenzi.admin.display import time_column
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import VerificationCode
from django_zhenzi.services import clock

# A code's stored state stays "active" when it expires or runs out of tries: check_code works
# those out from expires_at and tries when a code is checked. The list works them out the same way.
EXPIRED = "expired"


OUT_OF_TRIES = "out_of_tries"


CODE_STATE_LABELS = {
    VerificationCode.State.ACTIVE.value: VerificationCode.State.ACTIVE.label,
    EXPIRED: _("expired"),
    OUT_OF_TRIES: _("out of tries"),
    VerificationCode.State.USED.value: VerificationCode.State.USED.label,
    VerificationCode.State.SUPERSEDED.value: VerificationCode.State.SUPERSEDED.label,
}


def code_state(code: VerificationCode, moment: datetime) -> str:
    """The state a code is in at ``moment``: its stored state, or for an active one whether it
    ran out of tries or expired (out of tries first: no try counts after expiry)."""
    if code.state != VerificationCode.State.ACTIVE:
        return code.state
    if code.tries >= int(zhenzi_settings.CODE_MAX_TRIES):
        return OUT_OF_TRIES
    if code.expires_at <= moment:
        return EXPIRED
    return code.state


def code_state_filter(state: str, moment: datetime) -> Q:
    """The codes ``code_state`` puts in ``state`` at ``moment``, as a query."""
    active = Q(state=VerificationCode.State.ACTIVE)
    exhausted = Q(tries__gte=int(zhenzi_settings.CODE_MAX_TRIES))
    if state == OUT_OF_TRIES:
        return active & exhausted
    if state == EXPIRED:
        return active & ~exhausted & Q(expires_at__lte=moment)
    if state == VerificationCode.State.ACTIVE:
        return active & ~exhausted & Q(expires_at__gt=moment)
    return Q(state=state)


class CodeStateFilter(admin.SimpleListFilter):
    """Codes by the state they are in now, expired and out of tries included."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(CODE_STATE_LABELS.items())

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[VerificationCode]
    ) -> QuerySet[VerificationCode]:
        value = self.value()
        if value not in CODE_STATE_LABELS:
            return queryset
        return queryset.filter(code_state_filter(value, clock.now()))


@admin.register(VerificationCode)
class VerificationCodeAdmin(ReadOnlyModelAdmin):
    """Codes sent, by number and purpose, with their state and tries (never the code)."""

    list_display = (
        "created_at_column",
        "number",
        "purpose",
        "state_label",
        "tries",
        "expires_at_column",
        "client_ip",
    )
    list_filter = ("purpose", CodeStateFilter)
    search_fields = ("number",)
    date_hierarchy = "created_at"
    fields = (*list_display, "used_at_column", "sms")
    readonly_fields = fields

    created_at_column = time_column(VerificationCode, "created_at")
    expires_at_column = time_column(VerificationCode, "expires_at")
    used_at_column = time_column(VerificationCode, "used_at")

    @admin.display(description=_("state"), ordering="state")
    def state_label(self, code: VerificationCode) -> SafeString:
        state = code_state(code, clock.now())
        return format_html(
            '<span class="zhenzi-badge zhenzi-code-{}">{}</span>', state, CODE_STATE_LABELS[state]
        )
