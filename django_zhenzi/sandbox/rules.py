"""What the sandbox checks and how it accepts a message, as Zhenzi does.

Checks run in this order: appId/appSecret empty (100), appId unknown (105), app disabled (106),
peer address not whitelisted (107), appSecret wrong (110); then the parameters: number (100),
templateId (100 empty, 117 unknown) and templateParams (100), message empty (100) or too long (101),
messageId reused (100), balance (108), per-number daily cap (109).

Where the provider publishes nothing, the sandbox assumes:
- ``findSmsByMessageId`` for an unknown messageId answers ``{"code": 0, "data": null}``;
- a messageId already used by an accepted message answers
  ``{"code": 100, "data": "messageId重复"}`` (a rejected request does not use up its messageId);
- a record's ``appName`` is the appId; its ``status`` is ``"sending"`` until the report time,
  then ``"success"`` or ``"fail"``;
- status reports are POSTed as described in ``reports.py`` with the fields ``messageId``,
  ``toNumber``, ``status``, ``errorCode`` (DELIVRD/UNDELIV), ``reportTime`` and ``appName``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .delivery import ReportDispatcher
from .provider import (
    BALANCE_PATH,
    DUPLICATE_MESSAGE_ID_TEXT,
    FIND_PATH,
    MAX_MESSAGE_LENGTH,
    SUCCESS_TEXT,
    TEMPLATE_SEND_PATH,
    Template,
    china_time,
    error,
    is_mobile_number,
    parse_template_params,
    segment_count,
)


@dataclass(slots=True)
class SentMessage:
    """An accepted message."""

    message_id: str | None
    number: str
    message: str
    template_id: str | None
    template_params: list[str] | None
    client_ip: str | None
    cost: int
    create_time: str
    report_due: float  # time.monotonic() when the carrier's report arrives
    deliverable: bool
    recorded_at: float = 0.0  # time.monotonic() from which the provider shows it ("late" fault)

    def recorded(self, now: float) -> bool:
        """Whether the provider shows the message yet (a "late" one only after its delay)."""
        return now >= self.recorded_at

    def status(self, now: float) -> str:
        if now < self.report_due:
            return "sending"
        return "success" if self.deliverable else "fail"

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "number": self.number,
            "message": self.message,
            "templateId": self.template_id,
            "templateParams": list(self.template_params) if self.template_params else None,
            "clientIp": self.client_ip,
            "cost": self.cost,
            "createTime": self.create_time,
            "status": self.status(now),
        }

    def as_record(self, now: float, app_name: str) -> dict[str, Any]:
        """The record ``findSmsByMessageId`` answers."""
        return {
            "messageId": self.message_id,
            "toNumber": self.number,
            "message": self.message,
            "status": self.status(now),
            "createTime": self.create_time,
            "appName": app_name,
        }


class ProviderRules:
    """The request rules of :class:`~.server.Sandbox` (which holds the state they read)."""

    app_id: str
    app_secret: str
    disabled: bool
    ip_whitelist: frozenset[str]
    daily_cap: int
    report_delay: float
    undeliverable_suffixes: str
    templates: dict[str, Template]
    _balance: int
    _messages: list[SentMessage]
    _accepted: dict[str, SentMessage]
    _repeat_counts: dict[str, int]
    _daily_counts: dict[tuple[str, str], int]
    _dispatcher: ReportDispatcher | None

    def _process(
        self, path: str, fields: Mapping[str, str], peer: str, record_after: float = 0.0
    ) -> dict[str, Any]:
        app_id = fields.get("appId", "")
        app_secret = fields.get("appSecret", "")
        if not app_id or not app_secret:
            return error(100)
        if app_id != self.app_id:
            return error(105)
        if self.disabled:
            return error(106)
        if self.ip_whitelist and peer not in self.ip_whitelist:
            return error(107)
        if not hmac.compare_digest(app_secret.encode(), self.app_secret.encode()):
            return error(110)
        if path == BALANCE_PATH:
            return {"code": 0, "data": self._balance}
        if path == FIND_PATH:
            return self._find(fields.get("messageId", ""))
        return self._send(path, fields, record_after)

    def _find(self, message_id: str) -> dict[str, Any]:
        if not message_id:
            return error(100)
        now = time.monotonic()
        sent = self._accepted.get(message_id)
        if sent is None or not sent.recorded(now):
            return {"code": 0, "data": None}
        return {"code": 0, "data": sent.as_record(now, self.app_id)}

    def _send(
        self, path: str, fields: Mapping[str, str], record_after: float = 0.0
    ) -> dict[str, Any]:
        """Check and accept a message; with ``record_after`` > 0 (a "late" request) it is
        charged now but recorded that many seconds from now."""
        number = fields.get("number", "")
        if not is_mobile_number(number):
            return error(100)
        template_id = template_params = None
        if path == TEMPLATE_SEND_PATH:
            template_id = fields.get("templateId", "")
            if not template_id:
                return error(100)
            template = self.templates.get(template_id)
            if template is None:
                return error(117)
            template_params = parse_template_params(fields.get("templateParams", ""))
            if template_params is None or len(template_params) != template.placeholder_count:
                return error(100)
            message = template.fill(template_params)
        else:
            message = fields.get("message", "")
            if not message:
                return error(100)
        if len(message) > MAX_MESSAGE_LENGTH:
            return error(101)
        message_id = fields.get("messageId") or None
        if message_id is not None and message_id in self._accepted:  # pending "late" ones too
            self._repeat_counts[message_id] = self._repeat_counts.get(message_id, 0) + 1
            return {"code": 100, "data": DUPLICATE_MESSAGE_ID_TEXT}
        cost = segment_count(message)
        if self._balance < cost:
            return error(108)
        now = time.time()
        create_time = china_time(now + record_after)
        day_key = (number, create_time[:10])
        sent_today = self._daily_counts.get(day_key, 0)
        if self.daily_cap and sent_today >= self.daily_cap:
            return error(109)

        self._balance -= cost
        self._daily_counts[day_key] = sent_today + 1
        recorded_at = time.monotonic() + record_after
        sent = SentMessage(
            message_id=message_id,
            number=number,
            message=message,
            template_id=template_id,
            template_params=template_params,
            client_ip=fields.get("clientIp") or None,
            cost=cost,
            create_time=create_time,
            report_due=recorded_at + self.report_delay,
            deliverable=number[-1] not in self.undeliverable_suffixes,
            recorded_at=recorded_at,
        )
        self._messages.append(sent)
        if message_id is not None:
            self._accepted[message_id] = sent
            if self._dispatcher is not None:
                self._dispatcher.schedule(sent.report_due, self._report(sent, now + record_after))
        return {"code": 0, "data": SUCCESS_TEXT}

    def _report(self, sent: SentMessage, accepted_at: float) -> dict[str, str]:
        delivered = sent.deliverable
        return {
            "messageId": sent.message_id or "",
            "toNumber": sent.number,
            "status": "success" if delivered else "fail",
            "errorCode": "DELIVRD" if delivered else "UNDELIV",
            "reportTime": china_time(accepted_at + self.report_delay),
            "appName": self.app_id,
        }
