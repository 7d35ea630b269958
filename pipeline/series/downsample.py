"""An app's buckets read back for a range as at most `MAX_POINTS` points, whatever the range:
buckets summed into steps that are a whole number of buckets, and p50/p95 from the summed
latency histograms (exact percentiles could not be summed)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.errors import InvalidInput
from pipeline.series import histogram
from pipeline.series.buckets import BUCKET_SECONDS, CLASSES, Bucket

MAX_POINTS = 500
RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}
LONGEST = 31 * 86400  # a since/until range longer than this is refused


@dataclass(frozen=True)
class Window:
    """Points from `since` to `until` (both multiples of `step`), `step` seconds each."""

    since: int
    until: int
    step: int

    @property
    def count(self) -> int:
        return (self.until - self.since) // self.step

    def index(self, at: float) -> int:
        return int((at - self.since) // self.step)


def window(since: float, until: float, step: int | None = None) -> Window:
    """The window of at most MAX_POINTS points over `since`..`until`: `step` (whole buckets)
    is widened to fit; the ends are rounded out to it."""
    if until <= since:
        raise InvalidInput("the range must end after it starts")
    if until - since > LONGEST:
        raise InvalidInput(f"a range is at most {LONGEST // 86400} days")
    fitting = math.ceil((until - since) / MAX_POINTS / BUCKET_SECONDS) * BUCKET_SECONDS
    asked = math.ceil(max(step or 0, 1) / BUCKET_SECONDS) * BUCKET_SECONDS
    width = max(fitting, asked)
    first = int(since // width) * width
    last = math.ceil(until / width) * width
    while (last - first) // width > MAX_POINTS:  # the rounding out added a point
        width += BUCKET_SECONDS
        first, last = int(since // width) * width, math.ceil(until / width) * width
    return Window(first, last, width)


@dataclass(frozen=True)
class Point:
    at: int  # the start of its step
    requests: int
    by_class: tuple[int, ...]  # requests by status class (CLASSES)
    p50_ms: float | None
    p95_ms: float | None
    restarts: int

    def per_second(self, step: int) -> dict[str, float]:
        return {
            name: round(count / step, 3) for name, count in zip(CLASSES, self.by_class, strict=True)
        }


def downsample(buckets: list[tuple[int, Bucket]], within: Window) -> list[Point]:
    """Every step of the window, empty ones included, from the app's buckets in it."""
    steps = [Bucket() for _ in range(within.count)]
    for at, bucket in buckets:
        index = within.index(at)
        if 0 <= index < len(steps):
            steps[index].add_bucket(bucket)
    return [
        Point(
            at=within.since + index * within.step,
            requests=summed.requests,
            by_class=tuple(summed.classes),
            p50_ms=histogram.quantile(summed.latency, 0.50),
            p95_ms=histogram.quantile(summed.latency, 0.95),
            restarts=summed.restarts,
        )
        for index, summed in enumerate(steps)
    ]
