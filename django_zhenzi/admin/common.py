"""Pieces the admin pages share: status badges, compact times, error explanations (of provider
codes and of the error texts the services store) and a paginator for big tables."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise, cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import ZhenziAPIError, ZhenziError, ZhenziTransportError, explain
from django_zhenzi.models import Status
from django_zhenzi.services import MASKED_NOT_RESENT

#: An unfiltered PostgreSQL table bigger than this is not counted: the planner's estimate of
#: its size (``pg_class.reltuples``) is used instead.
ESTIMATE_ABOVE = 100_000
#: How the lists show a moment: compact, to the second, in the current time zone.
COMPACT_TIME_FORMAT = "Y-m-d H:i:s"


def chinese_active() -> bool:
    """Whether the page is being rendered in Chinese (zh-hans, or any other zh variant)."""
    return (get_language() or "").lower().startswith("zh")


def explain_code(code: int) -> tuple[str, str]:
    """A provider error code's meaning and hint, in Chinese when the page is."""
    explanation = explain(code)
    if chinese_active():
        return explanation.meaning_zh, explanation.hint_zh
    return explanation.meaning, explanation.hint


def explain_code_sentence(code: int) -> str:
    """A provider error code's meaning and hint as one text, punctuated for the language."""
    meaning, hint = explain_code(code)
    return _("%(meaning)s. %(hint)s") % {"meaning": meaning, "hint": hint}


def describe_error(error: Exception) -> str:
    """What went wrong talking to Zhenzi, for an operator. Error texts never hold the app
    secret: the client removes it from everything it raises."""
    if isinstance(error, ZhenziAPIError):
        meaning, hint = explain_code(error.code)
        return _("Zhenzi refused the request with error %(code)s: %(meaning)s. %(hint)s") % {
            "code": error.code,
            "meaning": meaning,
            "hint": hint,
        }
    if isinstance(error, OperationNotSupported):
        return _("The configured SMS backend has no Zhenzi account to ask (%(detail)s).") % {
            "detail": error
        }
    if isinstance(error, ZhenziTransportError):
        unreachable = describe_unreachable(str(error), sending=False)
        if unreachable is not None:
            return unreachable
        return _("Zhenzi could not be reached or gave no usable answer: %(detail)s") % {
            "detail": describe_stored_error(str(error))
        }
    if isinstance(error, ImproperlyConfigured):
        return _("Zhenzi is not configured: %(detail)s") % {"detail": error}
    if isinstance(error, ZhenziError):
        return describe_stored_error(str(error))
    raise TypeError(f"not an error about Zhenzi: {type(error).__name__}")


_UNREACHABLE = re.compile(
    r"Could not reach (?P<url>\S+), nothing was sent \((?P<detail>.+)\)", re.DOTALL
)


def describe_unreachable(text: str, *, sending: bool) -> str | None:
    """A connection the client could not open (its ``ZhenziNotSentError`` text), said with
    what to check; None if ``text`` says something else. The client's text says "nothing was
    sent" whatever the request: only a send (``sending``) says so here, a balance read or a
    status look-up has nothing to send."""
    match = _UNREACHABLE.fullmatch(text)
    if match is None:
        return None
    if sending:
        problem = _("Zhenzi could not be reached at %(url)s, nothing was sent (%(detail)s).")
    else:
        problem = _("Zhenzi could not be reached at %(url)s (%(detail)s).")
    hint = _(
        "Check ZHENZI['API_URL']: is the server it names running and reachable from here? For "
        "the bundled sandbox, start it with manage.py zhenzi_sandbox."
    )
    return _("%(problem)s %(hint)s") % {
        "problem": problem % {"url": match["url"], "detail": match["detail"]},
        "hint": hint,
    }


def status_badge(status: str) -> SafeString:
    """A message status as a coloured label."""
    try:
        label = Status(status).label
    except ValueError:
        label = status
    return format_html('<span class="zhenzi-badge zhenzi-status-{}">{}</span>', status, label)


def compact_time(moment: datetime | None) -> str:
    """``moment`` as ``2026-05-01 14:03:27`` in the current time zone, the same in every
    language: narrow enough for a list column, precise to the second."""
    if moment is None:
        return ""
    return date_format(timezone.template_localtime(moment), COMPACT_TIME_FORMAT)


def time_column(model: type[Model], field_name: str) -> Callable[[Any, Model], SafeString]:
    """A list column (or read-only field of a page) showing the date-time field ``field_name``
    as ``compact_time`` does, headed and sorted like the field itself. A narrow column breaks it
    between the date and the time, never inside the date."""
    field = model._meta.get_field(field_name)

    @admin.display(description=field.verbose_name, ordering=field_name)
    def column(model_admin: Any, obj: Model) -> SafeString:
        moment = getattr(obj, field_name)
        if moment is None:
            # A page shows a callable's None as "None": give the admin's empty value instead.
            return model_admin.get_empty_value_display()
        date, _space, time = compact_time(moment).partition(" ")
        return format_html('<span class="zhenzi-date">{}</span> {}', date, time)

    column.__name__ = f"{field_name}_column"
    return column


def clipped(text: str, *, title: str | None = None) -> SafeString:
    """``text`` cut by the stylesheet with an ellipsis where its column ends (after two lines,
    or one for IDs); the whole of it (or ``title``) shows on hover."""
    return format_html(
        '<span class="zhenzi-clip" title="{}">{}</span>', text if title is None else title, text
    )


# --- Stored error texts --------------------------------------------------------------------------
# The services store why a message failed as English data (``Message.error_text``): logs, tests
# and other code read it as it is. The admin shows it in the page's language: each shape below is
# one the services or the client write, and its gettext text reproduces it in English.


@dataclass(frozen=True)
class StoredReason:
    """One shape of stored error text: a pattern matching all of it, the text that says it
    again with the pattern's named groups as ``%(name)s``, and the groups that hold another
    stored text (translated in turn)."""

    pattern: re.Pattern[str]
    message: Promise
    nested: tuple[str, ...] = ()

    def describe(self, text: str) -> str | None:
        match = self.pattern.fullmatch(text)
        if match is None:
            return None
        values = {
            name: describe_stored_error(value) if name in self.nested else value
            for name, value in match.groupdict().items()
        }
        return str(self.message) % values


def _reason(pattern: str, message: Promise, nested: tuple[str, ...] = ()) -> StoredReason:
    return StoredReason(re.compile(pattern, re.DOTALL), message, nested)


STORED_REASONS: tuple[StoredReason, ...] = (
    # Written by the services.
    _reason(
        r"The claim expired before an answer was recorded\.",
        gettext_lazy("The claim expired before an answer was recorded."),
    ),
    _reason(r"The provider never received it\.", gettext_lazy("The provider never received it.")),
    _reason(
        r"Taken as sent: the provider refused its messageId as already used, though "
        r"findSmsByMessageId never showed it\.",
        gettext_lazy(
            "Taken as sent: the provider refused its messageId as already used, though "
            "findSmsByMessageId never showed it."
        ),
    ),
    _reason(
        r"Stored template parameters are not a list of strings: (?P<params>.+)",
        gettext_lazy("Stored template parameters are not a list of strings: %(params)s"),
    ),
    _reason(
        r"The backend cannot look messages up\.",
        gettext_lazy("The backend cannot look messages up."),
    ),
    _reason(
        re.escape(MASKED_NOT_RESENT),
        gettext_lazy(
            "Not sent again: the verification code it carried was kept only in memory; request "
            "a new code."
        ),
    ),
    _reason(
        re.escape(MASKED_NOT_RESENT) + r" \((?P<reason>.+)\)",
        gettext_lazy(
            "Not sent again: the verification code it carried was kept only in memory; request "
            "a new code. (%(reason)s)"
        ),
        nested=("reason",),
    ),
    _reason(
        r"Gave up after (?P<count>\d+) attempts: (?P<reason>.+)",
        # Translators: the stored English text says "attempts" whatever the count.
        gettext_lazy("Gave up after %(count)s attempts: %(reason)s"),
        nested=("reason",),
    ),
    _reason(
        r"Reconciliation failed, will ask again: (?P<reason>.+)",
        gettext_lazy("Reconciliation failed, will ask again: %(reason)s"),
        nested=("reason",),
    ),
    # Written by the client, stored by the services as the reason of a failure.
    _reason(
        r"Could not reach (?P<url>\S+), nothing was sent \((?P<detail>.+)\)",
        gettext_lazy("Could not reach %(url)s, nothing was sent (%(detail)s)"),
    ),
    _reason(
        r"No answer from (?P<url>\S+); the request may have been processed \((?P<detail>.+)\)",
        gettext_lazy("No answer from %(url)s; the request may have been processed (%(detail)s)"),
    ),
    _reason(
        r"HTTP (?P<status>\d+) from (?P<path>\S+): the provider may have processed the request",
        gettext_lazy("HTTP %(status)s from %(path)s: the provider may have processed the request"),
    ),
    _reason(
        r"HTTP (?P<status>\d+) from (?P<path>\S+): the request was refused before processing "
        r"\(check ZHENZI\['API_URL'\]\)",
        gettext_lazy(
            "HTTP %(status)s from %(path)s: the request was refused before processing (check "
            "ZHENZI['API_URL'])"
        ),
    ),
    _reason(
        r"The answer from (?P<path>\S+) has no integer 'code'",
        gettext_lazy("The answer from %(path)s has no integer 'code'"),
    ),
    _reason(
        r"The answer from (?P<path>\S+) is not JSON",
        gettext_lazy("The answer from %(path)s is not JSON"),
    ),
    _reason(
        r"(?P<number>.+) is not a mainland China mobile number \(11 digits starting with "
        r"1\[3-9\]\)\.",
        gettext_lazy(
            "%(number)s is not a mainland China mobile number (11 digits starting with 1[3-9])."
        ),
    ),
    _reason(
        r"(?P<number>.+) holds several numbers; Zhenzi takes exactly one number per message\.",
        gettext_lazy(
            "%(number)s holds several numbers; Zhenzi takes exactly one number per message."
        ),
    ),
    _reason(r"The phone number is empty\.", gettext_lazy("The phone number is empty.")),
)

_API_ERROR = re.compile(
    r"Zhenzi error (?P<code>-?\d+) on (?P<endpoint>\S+): (?P<rest>.+)", re.DOTALL
)


def describe_api_error(text: str) -> str | None:
    """A stored ``ZhenziAPIError`` text, said again with the code's meaning and hint in the
    page's language; None if ``text`` is not one."""
    match = _API_ERROR.fullmatch(text)
    if match is None:
        return None
    code = int(match["code"])
    explanation = explain(code)
    head = f"{explanation.meaning} ({explanation.meaning_zh}; provider said: "
    tail = f"). {explanation.hint}"
    rest = match["rest"]
    if not (rest.startswith(head) and rest.endswith(tail)) or len(rest) < len(head + tail):
        return None
    meaning, hint = explain_code(code)
    return _(
        "Zhenzi error %(code)s on %(endpoint)s: %(meaning)s (provider said: %(answer)s). %(hint)s"
    ) % {
        "code": code,
        "endpoint": match["endpoint"],
        "meaning": meaning,
        "answer": rest[len(head) : len(rest) - len(tail)],
        "hint": hint,
    }


def describe_stored_error(text: str) -> str:
    """A ``Message.error_text`` in the page's language: each known reason the services store
    (and the client errors they store as reasons) is translated; anything else is shown as it
    was stored."""
    for reason in STORED_REASONS:
        described = reason.describe(text)
        if described is not None:
            return described
    described = describe_api_error(text)
    return text if described is None else described


def estimated_count(object_list: Any) -> int | None:
    """The planner's row estimate for an unfiltered queryset over a big PostgreSQL table, or
    None where an exact count is wanted (other databases, filtered lists, small tables)."""
    if not isinstance(object_list, QuerySet):
        return None
    query = object_list.query
    if query.where or query.combinator or query.distinct or query.is_sliced:
        return None
    connection = connections[object_list.db]
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(object_list.model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < ESTIMATE_ABOVE:
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):
    """A paginator that spares a huge unfiltered table its ``COUNT(*)`` (PostgreSQL only).

    The estimate is close, not exact: the last page may come out short or empty. Filtered and
    searched lists are always counted exactly.
    """

    @cached_property
    def count(self) -> int:
        estimate = estimated_count(self.object_list)
        return estimate if estimate is not None else super().count


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows the app writes itself: viewable, never added or edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # every row is history; zhenzi_cleanup removes old ones
