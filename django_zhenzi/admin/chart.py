"""The balance history chart: an SVG drawn on the server, with no JavaScript and no fonts to load.

Balances are written as the site writes numbers everywhere else (the language's format, grouped
only with ``USE_THOUSAND_SEPARATOR``); the balance axis starts at zero and always reaches the
low-balance threshold, so a change of a few messages does not fill the chart and the threshold
line is always drawn. The time axis shows compact dates and times (``2026-05-01`` over ``14:03``,
with seconds where minutes would repeat) like the admin's lists, the date only where it changes;
the description for screen readers uses the language's own date format. Every piece of text goes
through ``format_html``, so nothing in the data can inject markup.
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
#: The balance axis reaches at least this high, so a flat or tiny series is not magnified.
MIN_VALUE_SPAN = 10
AXIS_DATE_FORMAT = "Y-m-d"
#: Time formats for the time axis, tried in order until every tick says something different.
AXIS_TIME_FORMATS = ("H:i", "H:i:s")


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


def time_labels(moments: Sequence[datetime]) -> list[tuple[datetime, str, str]]:
    """Each tick as (moment, date, time), no two alike: the time to the minute, or to the second
    when minutes would repeat; a tick that would still repeat the one before is left out. The
    date is written at the first tick and where it changes, else it is empty."""
    labels: list[tuple[str, str]] = []
    for time_format_string in AXIS_TIME_FORMATS:
        labels = [
            (
                date_format(timezone.localtime(moment), AXIS_DATE_FORMAT),
                time_format(timezone.localtime(moment), time_format_string),
            )
            for moment in moments
        ]
        if len(set(labels)) == len(labels):
            break
    ticks: list[tuple[datetime, str, str]] = []
    previous: tuple[str, str] | None = None
    for moment, label in zip(moments, labels, strict=True):
        if label == previous:
            continue
        date, time = label
        ticks.append((moment, "" if previous is not None and previous[0] == date else date, time))
        previous = label
    return ticks


def value_range(values: Sequence[int], threshold: int | None) -> tuple[int, int]:
    """The balances the axis must show: from zero (or a lower balance) to the highest balance or
    the threshold, at least MIN_VALUE_SPAN."""
    low = min(0, *values)
    high = max(*values, threshold if threshold is not None else 0, low + MIN_VALUE_SPAN)
    return low, high


def balance_chart(
    points: Sequence[tuple[datetime, int]], *, threshold: int | None = None
) -> SafeString:
    """An SVG line chart of ``points`` (moment, balance), oldest first; empty without points.

    A dashed line marks ``threshold``; the balance axis always reaches it.
    """
    if not points:
        return mark_safe("")
    values = [value for _moment, value in points]
    ticks = value_ticks(*value_range(values, threshold))
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
    """A balance as a template writes ``{{ balance }}``, so the chart and the page agree."""
    return number_format(value)


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
    labels = time_labels(time_ticks(frame.start, frame.end))
    for moment, date, time in labels:
        anchor = "middle"
        if frame.end > frame.start and moment == frame.start:
            anchor = "start"
        elif frame.end > frame.start and moment == frame.end:
            anchor = "end"
        x = coordinate(frame.x(moment))
        # The date on the first line (only where it changes), the time always on the second.
        date_line = format_html('<tspan x="{}" dy="0">{}</tspan>', x, date) if date else ""
        parts.append(
            format_html(
                '<text class="zhenzi-chart-label" x="{}" y="{}" text-anchor="{}">'
                '{}<tspan x="{}" dy="14">{}</tspan></text>',
                x,
                HEIGHT - BOTTOM + 16,
                anchor,
                date_line,
                x,
                time,
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
