"""The admin's send form: parse the pasted numbers, call ``send_sms``, say what happened."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from django_zhenzi.admin.errors import describe_unreachable
from django_zhenzi.admin.send_form import SendForm, list_numbers
from django_zhenzi.api import send_sms
from django_zhenzi.client import MAX_MESSAGE_LENGTH, ZhenziInputError, message_length
from django_zhenzi.models import Message
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.status import SENT_STATUSES, Status

SEND_PERMISSION = "django_zhenzi.send_message"


def send_messages(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Show the send form; on a valid POST send, report, and redirect to the new messages."""
    if not request.user.has_perm(SEND_PERMISSION):
        raise PermissionDenied
    form = SendForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sent = send_sms(
                data["numbers"],
                data["message"] or None,
                template_id=data["template_id"] or None,
                template_params=data["template_params"] or None,
                queue=form.queue,
                priority=data["priority"],
            )
        except ZhenziInputError as error:  # the form checks the same rules: a safety net
            form.add_input_error(error)
        except RateLimited as error:  # ZHENZI["LIMIT_ALL_SENDS"]: its text is translated
            form.add_error(None, str(error))
        else:
            rows = sent if isinstance(sent, list) else [sent]
            tell_outcome(request, form, rows)
            return HttpResponseRedirect(new_messages_url(model_admin, request, rows))
    typed = re.sub(r"\r\n?", "\n", str(form["message"].value() or "")).strip()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Send messages"),
        "opts": model_admin.opts,
        "form": form,
        "media": model_admin.media + form.media,
        "message_length": message_length(typed),
        "message_limit": MAX_MESSAGE_LENGTH,
        "can_view_messages": model_admin.has_view_permission(request),
    }
    return TemplateResponse(request, "django_zhenzi/admin/send_form.html", context)


def tell_outcome(request: HttpRequest, form: SendForm, rows: list[Message]) -> None:
    """Tell the operator what became of each number."""
    if form.queue:
        messages.success(
            request,
            ngettext(
                "%(count)d message was queued; the workers will send it.",
                "%(count)d messages were queued; the workers will send them.",
                len(rows),
            )
            % {"count": len(rows)},
        )
    else:
        outcomes = Counter("sent" if row.status in SENT_STATUSES else row.status for row in rows)
        tell_sent_now(request, outcomes, len(rows))
        tell_unreachable(request, rows)
    if form.invalid_numbers:
        messages.warning(
            request,
            ngettext(
                "%(count)d number is not a mainland China mobile number and was not sent to: "
                "%(numbers)s",
                "%(count)d numbers are not mainland China mobile numbers and were not sent to: "
                "%(numbers)s",
                len(form.invalid_numbers),
            )
            % {"count": len(form.invalid_numbers), "numbers": list_numbers(form.invalid_numbers)},
        )
    if form.duplicate_count:
        messages.info(
            request,
            ngettext(
                "%(count)d repeated number was sent to only once.",
                "%(count)d repeated numbers were sent to only once.",
                form.duplicate_count,
            )
            % {"count": form.duplicate_count},
        )


def tell_sent_now(request: HttpRequest, outcomes: Counter[str], total: int) -> None:
    sent, failed = outcomes["sent"], outcomes[Status.FAILED]
    if sent:
        messages.success(
            request,
            ngettext(
                "%(count)d of %(total)d message was sent.",
                "%(count)d of %(total)d messages were sent.",
                total,
            )
            % {"count": sent, "total": total},
        )
    if failed:
        messages.error(
            request,
            ngettext(
                "%(count)d message failed; its last error says why.",
                "%(count)d messages failed; their last error says why.",
                failed,
            )
            % {"count": failed},
        )
    pending = total - sent - failed
    if pending:
        messages.warning(
            request,
            ngettext(
                "%(count)d message did not go out yet; the workers will retry it or check "
                "whether it arrived.",
                "%(count)d messages did not go out yet; the workers will retry them or check "
                "whether they arrived.",
                pending,
            )
            % {"count": pending},
        )


def tell_unreachable(request: HttpRequest, rows: list[Message]) -> None:
    """When sending now could not reach Zhenzi, say so once, with what to check."""
    for row in rows:
        if row.status in SENT_STATUSES:
            continue
        described = describe_unreachable(row.error_kind, row.error_params)
        if described is not None:
            messages.error(request, described)
            return


def new_messages_url(
    model_admin: admin.ModelAdmin, request: HttpRequest, rows: list[Message]
) -> str:
    """The message list filtered to this send (its rows share one creation time), or the send
    form again for a user who may not see the list."""
    opts = model_admin.opts
    if not model_admin.has_view_permission(request):
        return request.path
    created = timezone.localtime(rows[0].created_at)
    query = {
        "created_at__gte": created.isoformat(),
        "created_at__lt": (created + timedelta(microseconds=1)).isoformat(),
    }
    changelist = reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
    )
    return f"{changelist}?{urlencode(query)}"
