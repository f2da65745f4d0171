"""The message list's actions: resend failed messages (also those that may have been sent, after
a confirmation page) and refresh statuses from Zhenzi, each behind its own permission."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_zhenzi import services
from django_zhenzi.admin.errors import describe_error
from django_zhenzi.admin.sending import SEND_PERMISSION
from django_zhenzi.models import MaybeSent, Message, Status

#: How many messages one "refresh status" action asks the provider about, so the request
#: stays short; select fewer to check the rest.
REFRESH_LIMIT = 100
#: Refreshing a status changes the message, so it takes Django's own "change message".
REFRESH_PERMISSION = "django_zhenzi.change_message"
#: How many messages the resend confirmation page lists by name.
CONFIRM_LIST_LIMIT = 100
RESEND_MAYBE_SENT_PERMISSION = "django_zhenzi.resend_maybe_sent"


class MessageActions(admin.ModelAdmin):
    """The actions of :class:`~django_zhenzi.admin.messages.MessageAdmin` and the permissions
    they need. Messages come from sending, never from the add form, and are never edited."""

    def has_send_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SEND_PERMISSION)

    def has_refresh_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REFRESH_PERMISSION)

    def has_resend_maybe_sent_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RESEND_MAYBE_SENT_PERMISSION)

    @admin.action(description=_("Resend the selected failed messages"), permissions=["send"])
    def resend_failed(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._report_requeue(request, services.requeue_failed(queryset))

    @admin.action(
        description=_("Resend failed messages even if they may have been sent"),
        permissions=["resend_maybe_sent"],
    )
    def resend_maybe_sent(
        self, request: HttpRequest, queryset: QuerySet[Message]
    ) -> TemplateResponse | None:
        """Requeue failed messages whose outcome was never settled, after a confirmation page
        that lists them: the phone may receive each of them twice."""
        if request.POST.get("confirm") == "yes":
            result = services.requeue_failed(queryset, confirm_maybe_sent=True)
            self._report_requeue(request, result)
            return None
        doubtful = queryset.filter(status=Status.FAILED, content_masked=False).exclude(
            maybe_sent=MaybeSent.NO
        )
        # "Select all" across pages comes back as select_across (the list's filters stay in the
        # URL), not as one field per message: Django refuses a form of more than
        # DATA_UPLOAD_MAX_NUMBER_FIELDS fields. The admin still wants one selected id.
        select_across = request.POST.get("select_across") == "1"
        selected = queryset.values_list("pk", flat=True)
        return TemplateResponse(
            request,
            "django_zhenzi/admin/confirm_resend_maybe_sent.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Resend messages that may have been sent?"),
                "opts": self.model._meta,
                "select_across": select_across,
                "selected_ids": list(selected[:1] if select_across else selected),
                "doubtful": list(doubtful[:CONFIRM_LIST_LIMIT]),
                "doubtful_count": doubtful.count(),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "action": "resend_maybe_sent",
            },
        )

    def _report_requeue(self, request: HttpRequest, result: services.RequeueResult) -> None:
        if result.requeued:
            self.message_user(
                request,
                ngettext(
                    "%(count)d failed message was queued to be sent again.",
                    "%(count)d failed messages were queued to be sent again.",
                    result.requeued,
                )
                % {"count": result.requeued},
                messages.SUCCESS,
            )
        if result.maybe_sent:
            self.message_user(
                request,
                ngettext(
                    "%(count)d failed message was not resent: it may have been sent (its outcome "
                    "was never settled). Resend it only with the action 'Resend failed messages "
                    "even if they may have been sent'.",
                    "%(count)d failed messages were not resent: they may have been sent (their "
                    "outcome was never settled). Resend them only with the action 'Resend failed "
                    "messages even if they may have been sent'.",
                    result.maybe_sent,
                )
                % {"count": result.maybe_sent},
                messages.WARNING,
            )
        if result.skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was skipped: only failed messages can be resent.",
                    "%(count)d messages were skipped: only failed messages can be resent.",
                    result.skipped,
                )
                % {"count": result.skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Refresh the status from Zhenzi"), permissions=["refresh"])
    def refresh_status(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        try:
            result = services.refresh_statuses(queryset, limit=REFRESH_LIMIT)
        except ImproperlyConfigured as error:
            self.message_user(request, describe_error(error), messages.ERROR)
            return
        if result.checked:
            self.message_user(
                request,
                ngettext(
                    "Asked Zhenzi about %(count)d message; %(finished)d now has a final status.",
                    "Asked Zhenzi about %(count)d messages; %(finished)d now have a final status.",
                    result.checked,
                )
                % {"count": result.checked, "finished": result.finished},
                messages.SUCCESS,
            )
        if result.skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was skipped: only sent messages and messages of unknown "
                    "outcome can be refreshed.",
                    "%(count)d messages were skipped: only sent messages and messages of "
                    "unknown outcome can be refreshed.",
                    result.skipped,
                )
                % {"count": result.skipped},
                messages.WARNING,
            )
        if result.error is not None:
            self.message_user(
                request,
                ngettext(
                    "%(reason)s %(count)d message was not checked.",
                    "%(reason)s %(count)d messages were not checked.",
                    result.not_checked,
                )
                % {"reason": describe_error(result.error), "count": result.not_checked},
                messages.WARNING,
            )
        elif result.not_checked:
            self.message_user(
                request,
                ngettext(
                    "Only %(limit)d messages are checked at a time; %(count)d was left: select "
                    "it again to check it.",
                    "Only %(limit)d messages are checked at a time; %(count)d were left: select "
                    "them again to check them.",
                    result.not_checked,
                )
                % {"limit": REFRESH_LIMIT, "count": result.not_checked},
                messages.WARNING,
            )
