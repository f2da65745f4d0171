"""The app's rows (the status rules are in ``status.py``):

- ``Message``: one SMS to one number, with its status and the provider's answer;
- ``StatusReport``: every raw delivery report, linked to its message (or an orphan);
- ``BalanceSnapshot``: the account balance as read at a moment;
- ``VerificationCode``: a one-time code's hash, purpose, tries and state;
- ``RateCounter`` and ``RateLimitRefusal``: the abuse limits' counters and refusals (``RateLimit``
  names the limits);
- ``AlertState``: whether each operator alert is raised, shared by every process.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_zhenzi.client import MAX_TEMPLATE_ID_LENGTH
from django_zhenzi.priority import Priority
from django_zhenzi.reasons import ErrorKind, render_reason
from django_zhenzi.status import (
    MaybeSent,
    Status,
)


def new_message_id() -> str:
    """A fresh messageId: given before the first attempt and kept for every retry."""
    return uuid.uuid4().hex


class Message(models.Model):
    """One SMS to one number: its content, where it stands and what the provider said."""

    message_id = models.CharField(
        _("message ID"),
        max_length=64,
        unique=True,
        default=new_message_id,
        editable=False,
        help_text=_("Sent to Zhenzi as messageId; the same for every attempt."),
    )
    number = models.CharField(_("number"), max_length=20, db_index=True)
    text = models.TextField(_("text"), blank=True, help_text=_("Free text, signature included."))
    template_id = models.CharField(_("template ID"), max_length=MAX_TEMPLATE_ID_LENGTH, blank=True)
    template_params = models.JSONField(_("template parameters"), default=list, blank=True)
    client_ip = models.GenericIPAddressField(
        _("client IP"),
        null=True,
        blank=True,
        help_text=_("The end user's IP address, passed to Zhenzi as clientIp."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        choices=Priority.choices,
        default=Priority.NORMAL,
        help_text=_("Due messages are sent by priority, then in the order they became due."),
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"), default=timezone.now, help_text=_("When a worker may next act.")
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    claim_token = models.CharField(_("claim"), max_length=64, blank=True, editable=False)
    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    error_text = models.TextField(_("error"), blank=True)
    error_kind = models.CharField(
        _("error kind"), max_length=32, choices=ErrorKind.choices, blank=True, default=""
    )
    error_params = models.JSONField(_("error parameters"), default=dict, blank=True)
    content_masked = models.BooleanField(
        _("content masked"),
        default=False,
        editable=False,
        help_text=_(
            "The stored text hides a verification code; the message is never sent again from it."
        ),
    )
    external_backend = models.BooleanField(
        _("sent through the caller's backend"),
        default=False,
        editable=False,
        help_text=_(
            "Sent with send_sms(backend=...): never retried, reconciled or sent through the "
            "settings' backend, which may be another account."
        ),
    )
    maybe_sent = models.CharField(
        _("may have been sent"),
        max_length=16,
        choices=MaybeSent.choices,
        blank=True,
        default=MaybeSent.NO,
        help_text=_(
            "Set while an attempt's outcome is unsettled: the provider may have the message. "
            "Cleared once the provider says whether it arrived. A failed message with this "
            "mark is resent only with an explicit confirmation."
        ),
    )
    provider_answer = models.JSONField(_("provider's answer"), null=True, blank=True)
    provider_status = models.CharField(
        _("provider's status"),
        max_length=64,
        blank=True,
        help_text=_("The raw status word of the latest report."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    polled_at = models.DateTimeField(
        _("last polled at"),
        null=True,
        blank=True,
        help_text=_("When 'zhenzi_status --sync' last asked the provider about it."),
    )
    next_poll_at = models.DateTimeField(
        _("next poll at"),
        null=True,
        blank=True,
        help_text=_("When 'zhenzi_status --sync' may ask again (the wait doubles each time)."),
    )
    status_changed_at = models.DateTimeField(_("status changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("send_message", _("Can send messages")),
            ("resend_maybe_sent", _("Can resend failed messages that may have been sent")),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="zhenzi_msg_queue_idx"),
            models.Index(
                fields=["status", "priority", "next_attempt_at", "id"], name="zhenzi_msg_claim_idx"
            ),
            models.Index(fields=["status", "-created_at"], name="zhenzi_msg_status_idx"),
            models.Index(fields=["template_id", "-created_at"], name="zhenzi_msg_template_idx"),
        ]

    def __str__(self) -> str:
        return _("%(number)s %(message_id)s (%(status)s)") % {
            "number": self.number,
            "message_id": self.message_id,
            "status": self.get_status_display(),
        }

    @property
    def error_reason(self) -> str:
        """Why it failed (or waits), in the active language: its error kind rendered from the
        catalogue; the stored text as it is for a row without a kind."""
        if not self.error_kind:
            return self.error_text
        return render_reason(self.error_kind, self.error_params, self.error_text)


class StatusReport(models.Model):
    """One delivery report, received on the callback or learnt by polling; kept raw."""

    class Source(models.TextChoices):
        CALLBACK = "callback", _("callback")
        POLL = "poll", _("poll")

    message = models.ForeignKey(
        Message,
        verbose_name=_("message"),
        related_name="reports",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
    )
    reported_message_id = models.CharField(
        _("message ID"),
        max_length=64,
        db_index=True,
        help_text=_("The messageId as the report gave it; kept even when no message matches."),
    )
    number = models.CharField(_("number"), max_length=20, blank=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        blank=True,
        choices=[
            (Status.DELIVERED, Status.DELIVERED.label),
            (Status.UNDELIVERED, Status.UNDELIVERED.label),
        ],
        help_text=_("Empty when the provider's word is not understood."),
    )
    raw_status = models.CharField(_("provider's status"), max_length=64, blank=True)
    source = models.CharField(
        _("source"), max_length=16, choices=Source.choices, default=Source.CALLBACK
    )
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("status report")
        verbose_name_plural = _("status reports")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return _("%(message_id)s: %(status)s") % {
            "message_id": self.reported_message_id,
            "status": self.raw_status or self.get_status_display(),
        }

    @property
    def is_orphan(self) -> bool:
        """No message matched its messageId (yet): it is linked when the message appears."""
        return self.message_id is None


class BalanceSnapshot(models.Model):
    """The account's balance at one moment."""

    balance = models.BigIntegerField(_("balance"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("balance snapshot")
        # The admin lists this model's page as the balance page.
        verbose_name_plural = _("balance")
        ordering = ["-recorded_at"]
        permissions = [("view_balance", _("Can view the account balance"))]

    def __str__(self) -> str:
        return f"{self.balance} @ {timezone.template_localtime(self.recorded_at):%Y-%m-%d %H:%M:%S}"


# --- Verification codes and abuse limits ----------------------------------------------------------

#: What stored rows show in place of a verification code.
CODE_MASK = "******"


class VerificationCode(models.Model):
    """One code sent to a number for a purpose. Only an HMAC of the code is stored.

    Its message (``sms``) stores the text with the code masked: the real text only ever lives in
    the memory of the process that sends it, so such a message is never resent (see
    ``Message.content_masked``).
    """

    class State(models.TextChoices):
        ACTIVE = "active", _("active")
        USED = "used", _("used")
        SUPERSEDED = "superseded", _("superseded by a newer code")

    number = models.CharField(_("number"), max_length=20)
    purpose = models.CharField(_("purpose"), max_length=32)
    code_hash = models.CharField(_("code hash"), max_length=64, editable=False)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.ACTIVE)
    tries = models.PositiveIntegerField(
        _("tries"), default=0, help_text=_("How many times the code was checked, right or wrong.")
    )
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    sms = models.OneToOneField(
        Message,
        verbose_name=_("message"),
        related_name="verification_code",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("verification code")
        verbose_name_plural = _("verification codes")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["number", "purpose", "-created_at"], name="zhenzi_code_lookup_idx")
        ]

    def __str__(self) -> str:
        return _("%(number)s %(purpose)s (%(state)s)") % {
            "number": self.number,
            "purpose": self.purpose,
            "state": self.get_state_display(),
        }


#: Fields of a delivery report or a provider's record kept as they are for a code message; the
#: others (the text holding the code above all) are masked before they are stored.
UNMASKED_REPORT_FIELDS = frozenset(
    {
        "messageid",
        "tonumber",
        "number",
        "mobile",
        "status",
        "errorcode",
        "reporttime",
        "createtime",
        "appname",
    }
)


def masked_payload(payload: object) -> object:
    """``payload`` (a report or record of a code message) with every value outside
    ``UNMASKED_REPORT_FIELDS`` replaced by ``CODE_MASK``."""
    if isinstance(payload, dict):
        return {
            key: value
            if str(key).lower() in UNMASKED_REPORT_FIELDS and not isinstance(value, (dict, list))
            else masked_payload(value)
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [masked_payload(item) for item in payload]
    return payload if payload in (None, "") else CODE_MASK


class RateLimit(models.TextChoices):
    """The abuse limits (``django_zhenzi.services.limits``), in the order they are checked."""

    CODE_COOLDOWN = "code_cooldown", _("cooldown between codes to one number")
    NUMBER_HOUR = "number_hour", _("messages per number per hour")
    NUMBER_DAY = "number_day", _("messages per number per day")
    IP_HOUR = "ip_hour", _("messages per client IP per hour")
    SITE_MINUTE = "site_minute", _("messages per minute, site-wide")
    SITE_DAY = "site_day", _("messages per day, site-wide")


class RateCounter(models.Model):
    """How many messages one limit let through for one subject in its current window.

    The window opens with its first message and lasts the limit's period; counting is one
    conditional UPDATE, so it stays right with many processes on many hosts.
    """

    limit = models.CharField(_("limit"), max_length=16, choices=RateLimit.choices)
    subject = models.CharField(
        _("subject"),
        max_length=64,
        blank=True,
        help_text=_("The number, the client IP (an IPv6 /64 network), or empty for the site."),
    )
    window_start = models.DateTimeField(_("window start"))
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("rate counter")
        verbose_name_plural = _("rate counters")
        constraints = [
            models.UniqueConstraint(fields=["limit", "subject"], name="zhenzi_counter_unique")
        ]

    def __str__(self) -> str:
        name = " ".join(part for part in (self.get_limit_display(), self.subject) if part)
        return f"{name}: {self.count}"


class RateLimitRefusal(models.Model):
    """How many requests one limit refused for one subject within one clock hour."""

    limit = models.CharField(_("limit"), max_length=16, choices=RateLimit.choices)
    subject = models.CharField(
        _("subject"),
        max_length=64,
        blank=True,
        help_text=_("The number, the client IP (an IPv6 /64 network), or empty for the site."),
    )
    hour = models.DateTimeField(_("hour"), db_index=True)
    count = models.PositiveIntegerField(_("refusals"), default=0)
    last_refused_at = models.DateTimeField(_("last refused at"))

    class Meta:
        verbose_name = _("rate-limit refusal")
        verbose_name_plural = _("rate-limit refusals")
        ordering = ["-hour", "-count"]
        constraints = [
            models.UniqueConstraint(
                fields=["limit", "subject", "hour"], name="zhenzi_refusal_unique"
            )
        ]

    def __str__(self) -> str:
        name = " ".join(part for part in (self.get_limit_display(), self.subject) if part)
        return f"{name}: {self.count} @ {timezone.template_localtime(self.hour):%Y-%m-%d %H:%M}"


# --- Operations -----------------------------------------------------------------------------------


class AlertState(models.Model):
    """Whether one alert is raised, shared by every process: an alert is sent when its row turns
    ``raised`` (a conditional update, so only one of many concurrent readers sends it) and
    re-armed when the row turns back."""

    name = models.CharField(_("alert"), max_length=32, unique=True)
    raised = models.BooleanField(_("raised"), default=False)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("alert state")
        verbose_name_plural = _("alert states")

    def __str__(self) -> str:
        return f"{self.name}: {'raised' if self.raised else 'armed'}"
