"""Graphs as data for the templates to draw as SVG (templates/charts.html): lines over time,
with marks at the moments things changed, axes with ticks and units, and one hover column
per point whose title reads every value at that time.

Drawn on the server: no script, no charting library to ship, and a page that shows its
graphs without JavaScript, beside the tables that hold the same values. Colours are the
Okabe-Ito palette (dashboard.css, `c-*` tones), which stays distinct for the common colour
blindnesses; each line also has its own dash pattern, so none is told by colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 30  # room for the axes' labels
TICK_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
MAX_TICKS = 7
LABEL_ROOM = 120  # a mark's label is set left of its line this close to the right edge
LABEL_ROWS = 3  # rows for the labels of marks close together
CHAR_WIDTH = 6.6  # a label's character at the charts' 11 px bold font, on the wide side
LABEL_GAP = 3  # between a mark's line and its label
DASHES = {"solid": "", "dashed": "6 3", "dotted": "2 3", "dashdot": "8 3 2 3"}


@dataclass(frozen=True)
class Series:
    """One line: a value per point (None: no value there, a gap in the line)."""

    name: str
    tone: str  # a c-* class of dashboard.css
    values: Sequence[float | None]
    dash: str = "solid"


@dataclass(frozen=True)
class Line:
    name: str
    tone: str
    dash: str  # an SVG stroke-dasharray
    segments: tuple[str, ...]  # polyline points, one per run of two or more without a gap
    dots: tuple[tuple[float, float], ...] = ()  # points alone between gaps: no line to draw


@dataclass(frozen=True)
class Mark:
    x: float
    at: float
    kind: str
    label: str
    row: int  # labels of marks close together are set on different rows
    anchor: str  # its label's side: "start" (right of the line), "end" near the right edge


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str  # the y axis's label
    since: float
    until: float
    lines: tuple[Line, ...]
    marks: tuple[Mark, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    columns: tuple[Column, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    def x(self, at: float) -> float:
        """Where time `at` is on the x axis."""
        return _x(at, self.since, self.until)


def _x(at: float, since: float, until: float) -> float:
    share = (at - since) / (until - since) if until > since else 0.0
    return round(LEFT + min(max(share, 0.0), 1.0) * (WIDTH - RIGHT - LEFT), 1)


def time_chart(
    title: str,
    unit: str,
    times: Sequence[float],
    step: float,
    series: Sequence[Series],
    marks: Sequence[tuple[float, str, str]] = (),
    describe: Callable[[int], str] | None = None,
) -> Chart:
    """A chart of `series` over points starting at `times`, `step` seconds each (a value is
    drawn at the middle of its step); `marks` are (time, kind, label); `describe(i)` is
    the hover text of point i (default: every series' value)."""
    since = times[0] if times else 0.0
    until = times[-1] + step if times else 1.0
    top = nice_ceiling(max((v for s in series for v in s.values if v is not None), default=0.0))
    bottom_y, top_y = HEIGHT - BOTTOM, TOP

    def y(value: float) -> float:
        return round(bottom_y - (value / top) * (bottom_y - top_y), 1)

    middles = [_x(at + step / 2, since, until) for at in times]
    lines = tuple(
        _line(s, middles, [None if v is None else y(v) for v in s.values]) for s in series
    )
    width = (WIDTH - RIGHT - LEFT) / len(times) if times else 0.0
    text = describe or (lambda i: _describe(times[i], series, i, unit))
    columns = tuple(
        Column(round(LEFT + i * width, 1), round(width, 2), text(i)) for i in range(len(times))
    )
    return Chart(
        title=title,
        unit=unit,
        since=since,
        until=until,
        lines=lines,
        marks=_marks(marks, since, until),
        x_ticks=_time_ticks(since, until),
        y_ticks=tuple(Tick(y(top * share), _number(top * share)) for share in (0, 0.5, 1)),
        columns=columns,
    )


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if value <= factor * power * (1 + 1e-9):
            return float(factor * power)
    return float(10 * power)


def _line(series: Series, xs: Sequence[float], ys: Sequence[float | None]) -> Line:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((x, y))
    return Line(
        series.name,
        series.tone,
        DASHES[series.dash],
        tuple(" ".join(f"{x},{y}" for x, y in run) for run in runs if len(run) > 1),
        tuple(run[0] for run in runs if len(run) == 1),
    )


def _marks(marks: Sequence[tuple[float, str, str]], since: float, until: float) -> tuple[Mark, ...]:
    """The marks in the range, each label on the first row where it meets no other label: a
    label set right of its line and one set left of a line further on can overlap as well."""
    placed: list[Mark] = []
    taken: list[list[tuple[float, float]]] = [[] for _ in range(LABEL_ROWS)]
    for at, kind, label in sorted(marks):
        if not since <= at <= until:
            continue
        x = _x(at, since, until)
        anchor = "end" if x > WIDTH - RIGHT - LABEL_ROOM else "start"
        width = len(label) * CHAR_WIDTH
        left = x + LABEL_GAP if anchor == "start" else x - LABEL_GAP - width
        right = left + width
        free = [
            row for row, spans in enumerate(taken) if all(right < a or left > b for a, b in spans)
        ]
        # All rows taken (marks crowded into a few pixels): the row whose labels end first.
        row = free[0] if free else min(range(LABEL_ROWS), key=lambda r: max(b for _, b in taken[r]))
        taken[row].append((left, right))
        placed.append(Mark(x, at, kind, label, row, anchor))
    return tuple(placed)


def _time_ticks(since: float, until: float) -> tuple[Tick, ...]:
    span = until - since
    every = next((s for s in TICK_SECONDS if span / s <= MAX_TICKS), TICK_SECONDS[-1])
    shape = "%H:%M:%S" if every < 60 else "%H:%M"
    first = math.ceil(since / every) * every
    return tuple(
        Tick(_x(at, since, until), datetime.fromtimestamp(at, UTC).strftime(shape))
        for at in range(int(first), int(until) + 1, every)
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _describe(at: float, series: Sequence[Series], index: int, unit: str) -> str:
    values = ", ".join(
        f"{s.name} {'—' if s.values[index] is None else _number(s.values[index] or 0.0)}"
        for s in series
    )
    return f"{datetime.fromtimestamp(at, UTC).strftime('%H:%M:%S')} UTC: {values} ({unit})"
