"""The balance history chart: an SVG drawn on the server, with no JavaScript and no fonts to load.

Balances follow the active language's number format; the time axis shows compact dates and times
(``2026-05-01`` over ``14:03``) like the admin's lists, and the description for screen readers
the language's own date format. Every piece of text goes through ``format_html``, so nothing in
the data can inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format, number_format, time_format
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

WIDTH = 720
HEIGHT = 260
LEFT = 72  # room for the balance labels
RIGHT = 24
TOP = 16
BOTTOM = 44  # room for two lines of time labels
TIME_TICKS = 5
VALUE_TICKS = 5
#: Above this many points the dots are left out and only the line is drawn.
MAX_DOTS = 60
AXIS_DATE_FORMAT = "Y-m-d"
AXIS_TIME_FORMAT = "H:i"


@dataclass(frozen=True)
class Frame:
    """Maps times and balances onto the drawing area."""

    start: datetime
    end: datetime
    low: int
    high: int

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        if span <= 0:
            return LEFT + (WIDTH - LEFT - RIGHT) / 2
        return LEFT + (moment - self.start).total_seconds() / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return TOP + (self.high - value) / (self.high - self.low) * (HEIGHT - TOP - BOTTOM)


def nice_step(span: float, ticks: int) -> int:
    """A round step (1, 2 or 5 times a power of ten, at least 1) dividing ``span`` into about
    ``ticks`` parts."""
    raw = span / max(ticks - 1, 1)
    if raw <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return int(factor * magnitude)
    return int(10 * magnitude)  # pragma: no cover (the loop always returns)


def value_ticks(low: int, high: int, ticks: int = VALUE_TICKS) -> list[int]:
    """Round values covering ``low..high``, at least two. A flat series is shown from zero."""
    if low == high:
        low, high = min(low, 0), max(high, 1)
    step = nice_step(high - low, ticks)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    return list(range(first, last + step, step))


def time_ticks(start: datetime, end: datetime, ticks: int = TIME_TICKS) -> list[datetime]:
    """Evenly spaced moments from ``start`` to ``end``; just one when they are equal."""
    if end <= start:
        return [start]
    return [start + (end - start) * index / (ticks - 1) for index in range(ticks)]


def balance_chart(
    points: Sequence[tuple[datetime, int]], *, threshold: int | None = None
) -> SafeString:
    """An SVG line chart of ``points`` (moment, balance), oldest first; empty without points.

    A dashed line marks ``threshold`` when it falls inside the balance axis.
    """
    if not points:
        return mark_safe("")
    values = [value for _moment, value in points]
    ticks = value_ticks(min(values), max(values))
    frame = Frame(points[0][0], points[-1][0], ticks[0], ticks[-1])
    parts = [
        format_html(
            '<svg class="zhenzi-chart" viewBox="0 0 {} {}" role="img" '
            'aria-labelledby="zhenzi-chart-title zhenzi-chart-desc">'
            '<title id="zhenzi-chart-title">{}</title><desc id="zhenzi-chart-desc">{}</desc>',
            WIDTH,
            HEIGHT,
            _("Balance history"),
            describe(points),
        )
    ]
    parts += value_axis(frame, ticks)
    parts += time_axis(frame)
    if threshold is not None and frame.low <= threshold <= frame.high:
        parts.append(threshold_line(frame, threshold))
    parts += series(frame, points)
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 (every part is escaped above)


def describe(points: Sequence[tuple[datetime, int]]) -> str:
    """The chart in words, for screen readers."""
    values = [value for _moment, value in points]
    return ngettext(
        "%(count)d reading from %(start)s to %(end)s; lowest %(low)s, highest %(high)s.",
        "%(count)d readings from %(start)s to %(end)s; lowest %(low)s, highest %(high)s.",
        len(points),
    ) % {
        "count": len(points),
        "start": format_moment(points[0][0]),
        "end": format_moment(points[-1][0]),
        "low": format_value(min(values)),
        "high": format_value(max(values)),
    }


def coordinate(value: float) -> str:
    """A coordinate as SVG wants it: a plain number with one decimal, whatever the locale."""
    return f"{value:.1f}"


def format_moment(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def format_value(value: int) -> str:
    return number_format(value, force_grouping=True)


def value_axis(frame: Frame, ticks: Sequence[int]) -> list[SafeString]:
    parts = []
    for value in ticks:
        y = frame.y(value)
        parts.append(
            format_html(
                '<line class="zhenzi-chart-grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="zhenzi-chart-label" x="{}" y="{}" text-anchor="end" '
                'dominant-baseline="middle">{}</text>',
                LEFT,
                coordinate(y),
                WIDTH - RIGHT,
                coordinate(y),
                LEFT - 8,
                coordinate(y),
                format_value(value),
            )
        )
    return parts


def time_axis(frame: Frame) -> list[SafeString]:
    parts = [
        format_html(
            '<line class="zhenzi-chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"/>',
            LEFT,
            HEIGHT - BOTTOM,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM,
        )
    ]
    moments = time_ticks(frame.start, frame.end)
    for index, moment in enumerate(moments):
        anchor = "middle"
        if len(moments) > 1 and index == 0:
            anchor = "start"
        elif len(moments) > 1 and index == len(moments) - 1:
            anchor = "end"
        local = timezone.localtime(moment)
        x = frame.x(moment)
        parts.append(
            format_html(
                '<text class="zhenzi-chart-label" x="{}" y="{}" text-anchor="{}">'
                '<tspan x="{}" dy="0">{}</tspan><tspan x="{}" dy="14">{}</tspan></text>',
                coordinate(x),
                HEIGHT - BOTTOM + 16,
                anchor,
                coordinate(x),
                date_format(local, AXIS_DATE_FORMAT),
                coordinate(x),
                time_format(local, AXIS_TIME_FORMAT),
            )
        )
    return parts


def threshold_line(frame: Frame, threshold: int) -> SafeString:
    y = frame.y(threshold)
    return format_html(
        '<line class="zhenzi-chart-threshold" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="zhenzi-chart-threshold-label" x="{}" y="{}" text-anchor="end">{}</text>',
        LEFT,
        coordinate(y),
        WIDTH - RIGHT,
        coordinate(y),
        WIDTH - RIGHT,
        coordinate(y - 4),
        _("Low balance: %(threshold)s") % {"threshold": format_value(threshold)},
    )


def series(frame: Frame, points: Sequence[tuple[datetime, int]]) -> list[SafeString]:
    coordinates = [(frame.x(moment), frame.y(value)) for moment, value in points]
    parts = []
    if len(coordinates) > 1:
        parts.append(
            format_html(
                '<polyline class="zhenzi-chart-line" points="{}"/>',
                " ".join(f"{coordinate(x)},{coordinate(y)}" for x, y in coordinates),
            )
        )
    if len(points) <= MAX_DOTS:
        for (x, y), (moment, value) in zip(coordinates, points, strict=True):
            parts.append(
                format_html(
                    '<circle class="zhenzi-chart-dot" cx="{}" cy="{}" r="3">'
                    "<title>{}: {}</title></circle>",
                    coordinate(x),
                    coordinate(y),
                    format_moment(moment),
                    format_value(value),
                )
            )
    return parts
