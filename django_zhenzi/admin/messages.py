"""The message history and the status reports: read-only lists that stay fast on big tables."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_zhenzi.admin.actions import MessageActions
from django_zhenzi.admin.base import ReadOnlyModelAdmin
from django_zhenzi.admin.display import clipped, status_badge, time_column
from django_zhenzi.admin.errors import (
    explain_code,
    explain_code_sentence,
)
from django_zhenzi.admin.pagination import EstimatedCountPaginator
from django_zhenzi.admin.reports import StatusReportInline
from django_zhenzi.admin.sending import send_messages
from django_zhenzi.admin.summary import StatusSummary
from django_zhenzi.models import Message, Status
from django_zhenzi.reasons import ErrorKind

#: How many template IDs the template filter offers.
TEMPLATE_FILTER_CHOICES = 50
#: The list cuts its text columns where they end; text past this many characters is left out of
#: the cell (its tooltip holds all of it).
CONTENT_EXCERPT_LENGTH = 60
ERROR_EXCERPT_LENGTH = 80


def template_params_text(params: object) -> str:
    """Template parameters as the list shows them: joined by commas. Anything but a list of
    strings (a row changed behind the app's back) is shown as the JSON stored, never fails."""
    if isinstance(params, list) and all(isinstance(value, str) for value in params):
        return ", ".join(params)
    return json.dumps(params, ensure_ascii=False)


class TemplateFilter(admin.SimpleListFilter):
    """Free-text messages, or the messages of one template."""

    title = _("template")
    parameter_name = "template"
    TEXT_ONLY = "(text)"  # parentheses never occur in a template ID

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        template_ids = (
            Message.objects.exclude(template_id="")
            .order_by("template_id")
            .values_list("template_id", flat=True)
            .distinct()[:TEMPLATE_FILTER_CHOICES]
        )
        return [(self.TEXT_ONLY, _("free text")), *((value, value) for value in template_ids)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(template_id="" if value == self.TEXT_ONLY else value)


@admin.register(Message)
class MessageAdmin(MessageActions, ReadOnlyModelAdmin):
    """Message history: newest first, read-only, with resend and refresh actions."""

    change_list_template = "django_zhenzi/admin/message_change_list.html"
    list_display = (
        "created_at_column",
        "number",
        "status_label",
        "content_excerpt",
        "attempts",
        "last_error",
    )
    list_display_links = ("created_at_column", "number")
    list_filter = (
        "status",
        "maybe_sent",
        ("created_at", admin.DateFieldListFilter),
        TemplateFilter,
    )
    search_fields = ("number__contains", "message_id__exact", "text")
    search_help_text = _("Search by phone number, complete messageId or text.")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ("resend_failed", "resend_maybe_sent", "refresh_status")
    inlines = (StatusReportInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "message_id",
                    "number",
                    "status",
                    "provider_status",
                    "text",
                    "template_id",
                    "template_params",
                    "client_ip",
                    "content_masked",
                )
            },
        ),
        (
            _("Sending"),
            {
                "fields": (
                    "created_at_column",
                    "attempts",
                    "next_attempt_at_column",
                    "claimed_at_column",
                    "claim_token",
                    "maybe_sent",
                    "sent_at_column",
                    "polled_at_column",
                    "next_poll_at_column",
                    "status_changed_at_column",
                )
            },
        ),
        (
            _("Errors and answers"),
            {
                "fields": (
                    "error_code",
                    "error_kind",
                    "error_explanation",
                    "error_description",
                    "provider_answer",
                )
            },
        ),
    )
    readonly_fields = tuple(name for _title, options in fieldsets for name in options["fields"])

    # Columns

    # The page shows its times like the list, to the second.
    created_at_column = time_column(Message, "created_at")
    next_attempt_at_column = time_column(Message, "next_attempt_at")
    claimed_at_column = time_column(Message, "claimed_at")
    sent_at_column = time_column(Message, "sent_at")
    polled_at_column = time_column(Message, "polled_at")
    next_poll_at_column = time_column(Message, "next_poll_at")
    status_changed_at_column = time_column(Message, "status_changed_at")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """The page's form, with each time column keeping its field's help text."""
        help_texts = {
            f"{field.name}_column": field.help_text
            for field in Message._meta.get_fields()
            if getattr(field, "help_text", "") and hasattr(self, f"{field.name}_column")
        }
        return super().get_form(request, obj, change, help_texts=help_texts, **kwargs)

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, message: Message) -> SafeString:
        if message.maybe_sent and message.status in (Status.FAILED, Status.UNKNOWN):
            return format_html(
                '{}<div class="zhenzi-maybe-sent" title="{}">{}</div>',
                status_badge(message.status),
                message.get_maybe_sent_display(),
                gettext("may have been sent"),
            )
        return status_badge(message.status)

    @admin.display(description=_("text or template"))
    def content_excerpt(self, message: Message) -> SafeString:
        if message.template_id:
            content = gettext("template %(id)s (%(params)s)") % {
                "id": message.template_id,
                "params": template_params_text(message.template_params),
            }
        else:
            content = message.text
        return clipped(Truncator(content).chars(CONTENT_EXCERPT_LENGTH), title=content)

    @admin.display(description=_("last error"))
    def last_error(self, message: Message) -> SafeString | str:
        if message.status == Status.UNDELIVERED and message.provider_status:
            # Why it did not arrive is in the delivery report's word, not in an error field.
            return clipped(
                message.provider_status,
                title=gettext("The provider's status word in the delivery report"),
            )
        if message.error_code is not None and not self._duplicate(message):
            meaning, hint = explain_code(message.error_code)
            return clipped(f"{message.error_code} {meaning}", title=hint)
        if message.error_text:
            described = message.error_reason
            return clipped(Truncator(described).chars(ERROR_EXCERPT_LENGTH), title=described)
        return ""

    @staticmethod
    def _duplicate(message: Message) -> bool:
        """A refused repeat of the messageId: its code (100) says "parameter format error",
        its kind says what happened."""
        return message.error_kind == ErrorKind.DUPLICATE_MESSAGE_ID

    @admin.display(description=_("what the error code means"))
    def error_explanation(self, message: Message) -> str:
        if message.error_code is None:
            return self.get_empty_value_display()  # the page would show None as "None"
        if self._duplicate(message):
            return message.error_reason
        return explain_code_sentence(message.error_code)

    @admin.display(description=Message._meta.get_field("error_text").verbose_name)
    def error_description(self, message: Message) -> SafeString | str:
        """The stored error text in the page's language, with the text as stored beneath it
        when they differ (it is what logs and other tools show)."""
        if not message.error_text:
            return self.get_empty_value_display()
        described = message.error_reason
        if described == message.error_text:
            return described
        return format_html(
            '{}<div class="zhenzi-stored">{}</div>',
            described,
            gettext("As stored: %(text)s") % {"text": message.error_text},
        )

    # Pages

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_send"
        # Outside any request transaction: messages sent now go out when their rows are
        # committed, and the page reports how that went.
        view = transaction.non_atomic_requests(self.admin_site.admin_view(self.send_view))
        send = path("send/", view, name=name)
        return [send, *super().get_urls()]

    def send_view(self, request: HttpRequest) -> HttpResponse:
        """The send form (permission ``send_message``)."""
        return send_messages(self, request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        changelist_url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        context = {
            "status_summary": StatusSummary(changelist_url),
            "can_send": self.has_send_permission(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)
