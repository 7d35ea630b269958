"""What the dashboard's graphs draw, from the records the API shows: a release's switch (its
traffic record's series, with the release's steps marked), an app's traffic over a range
(`receiver.api.series`) and each app's last hour in one small line on the apps page.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.release.records import SwitchSeries
from pipeline.release.states import ReleaseState as S
from pipeline.series.buckets import CLASSES
from receiver.api.series import SeriesView
from receiver.api.views import ReleaseDetail
from receiver.dashboard.charts import Chart, Series, time_chart

RANGES = ("1h", "6h", "24h")
CLASS_TONES = {"2xx": "c-green", "3xx": "c-sky", "4xx": "c-orange", "5xx": "c-vermillion"}
CLASS_DASHES = {"2xx": "solid", "3xx": "dotted", "4xx": "dashdot", "5xx": "dashed"}
SIDE_TONES = ("c-blue", "c-green", "c-purple", "c-yellow")  # oldest release first
OTHER_TONE = "c-grey"
SPARK_WIDTH, SPARK_HEIGHT, SPARK_POINTS = 120, 24, 60


@dataclass(frozen=True)
class Row:
    """One point of a graph in its table: the time and each value as text."""

    at: float
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Graphs:
    charts: tuple[Chart, ...]
    headers: tuple[str, ...]  # the table's, after its time
    rows: tuple[Row, ...]


def switch_graphs(release: ReleaseDetail) -> Graphs | None:
    """The release's switch, side by side for the releases that answered: requests and errors
    per second, p50 and p95; None for a release whose record has no series."""
    series = release.traffic.series if release.traffic else None
    if series is None or not series.sides:
        return None
    names = _side_order(series)
    count = len(next(iter(series.sides.values())).requests)
    times = [series.at(i) for i in range(count)]
    tones = dict(zip(names, itertools.cycle(SIDE_TONES), strict=False))
    tones.update({name: OTHER_TONE for name in names if not name.startswith("v")})
    step = series.step
    # Per second of what each bucket covers: the last one ends with the report, early.
    widths = [series.seconds(i) for i in range(count)]
    rates, latency = [], []
    for name in names:
        side = series.sides[name]
        per_second = [n / w for n, w in zip(side.requests, widths, strict=True)]
        errors = [n / w for n, w in zip(side.errors, widths, strict=True)]
        rates.append(Series(f"{name} requests", tones[name], per_second))
        rates.append(Series(f"{name} errors", tones[name], errors, "dashed"))
        latency.append(Series(f"{name} p50", tones[name], side.p50_ms, "dotted"))
        latency.append(Series(f"{name} p95", tones[name], side.p95_ms))
    marks = release_marks(release)
    charts = (
        time_chart("Requests around the switch", "requests/s", times, step, rates, marks),
        time_chart("Latency around the switch", "ms", times, step, latency, marks),
    )
    headers = tuple(
        f"{name} {what}" for name in names for what in ("requests", "errors", "p50 ms", "p95 ms")
    )
    rows = tuple(
        Row(
            times[i],
            tuple(
                cell
                for name in names
                for cell in (
                    str(series.sides[name].requests[i]),
                    str(series.sides[name].errors[i]),
                    _ms(series.sides[name].p50_ms[i]),
                    _ms(series.sides[name].p95_ms[i]),
                )
            ),
        )
        for i in range(count)
        if any(series.sides[name].requests[i] for name in names)
    )
    return Graphs(charts, headers, rows)


def release_marks(release: ReleaseDetail) -> list[tuple[float, str, str]]:
    """The moments of the release's switch: the gate passed, each canary step, the switch
    confirmed, the drain done, a flip back or a withdrawal."""
    marks: list[tuple[float, str, str]] = []
    for event in release.events:
        if event.was == S.HEALTH_CHECKING and event.state in (S.CANARY, S.SWITCHING):
            marks.append((event.at, "gate", "gate passed"))
        if event.was == S.SWITCHING and event.state in (S.DRAINING, S.LIVE):
            marks.append((event.at, "switch", "switch confirmed"))
        if event.was == S.DRAINING and event.state == S.LIVE:
            marks.append((event.at, "drain", "drain done"))
        if event.state == S.FAILED and release.failed_step == "bake":
            marks.append((event.at, "flip", "flipped back"))
        if event.state == S.FAILED and release.failed_step == "canary":
            marks.append((event.at, "flip", "canary withdrawn"))
        if event.state == S.CANARY and release.traffic and release.traffic.canary:
            at = event.at
            for step in release.traffic.canary.steps:
                marks.append((at, "canary", f"canary {step.weight}%"))
                at += step.seconds
    return marks


def app_graphs(view: SeriesView) -> Graphs:
    """An app's requests per second by status class, its p50/p95 latency and its restarts,
    with its deploys, rollbacks, flips back, scales and maintenance marked."""
    times = [float(p.at) for p in view.points]
    step = view.step
    marks = [(m.at, m.kind, m.label) for m in view.marks]
    rates = [
        Series(
            name, CLASS_TONES[name], [p.per_second[name] for p in view.points], CLASS_DASHES[name]
        )
        for name in CLASSES
    ]
    latency = [
        Series("p50", "c-sky", [p.p50_ms for p in view.points], "dotted"),
        Series("p95", "c-blue", [p.p95_ms for p in view.points]),
    ]
    restarts = [Series("restarts", "c-purple", [float(p.restarts) for p in view.points])]
    charts = (
        time_chart("Requests per second by status", "requests/s", times, step, rates, marks),
        time_chart("Latency", "ms", times, step, latency, marks),
        time_chart(
            "Container restarts", f"restarts per {_span(step)}", times, step, restarts, marks
        ),
    )
    headers = (*(f"{name}/s" for name in CLASSES), "p50 ms", "p95 ms", "restarts")
    rows = tuple(
        Row(
            p.at,
            (
                *(f"{p.per_second[name]:g}" for name in CLASSES),
                _ms(p.p50_ms),
                _ms(p.p95_ms),
                str(p.restarts),
            ),
        )
        for p in view.points
        if p.requests or p.restarts
    )
    return Graphs(charts, headers, rows)


@dataclass(frozen=True)
class Sparkline:
    points: str
    title: str
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


def sparkline(buckets: Sequence[tuple[int, int]], since: int, until: int) -> Sparkline:
    """An app's requests in its last hour, `buckets` (start, requests) summed into
    SPARK_POINTS steps, as one small line."""
    step = max((until - since) / SPARK_POINTS, 1.0)
    counts = [0] * SPARK_POINTS
    for at, requests in buckets:
        index = int((at - since) // step)
        if 0 <= index < SPARK_POINTS:
            counts[index] += requests
    top = max(counts) or 1
    xs = [round(i * (SPARK_WIDTH - 2) / (SPARK_POINTS - 1) + 1, 1) for i in range(SPARK_POINTS)]
    ys = [round(SPARK_HEIGHT - 2 - c / top * (SPARK_HEIGHT - 4), 1) for c in counts]
    total = sum(counts)
    peak = max(counts) / step
    title = f"{total:,} requests in the last hour, at most {peak:.3g}/s"
    return Sparkline(" ".join(f"{x},{y}" for x, y in zip(xs, ys, strict=True)), title)


def _side_order(series: SwitchSeries) -> list[str]:
    """Releases oldest first, then what Traefik answered itself."""
    named = sorted((n for n in series.sides if n.startswith("v")), key=lambda n: int(n[1:]))
    return named + sorted(n for n in series.sides if not n.startswith("v"))


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _span(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
