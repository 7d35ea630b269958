"""A small fixed latency histogram: enough to give p50 and p95 after buckets are summed.

Exact percentiles cannot be summed; counts per fixed bin can. Bins double-ish from 1 ms to
30 s (15 counts per bucket), and a quantile is interpolated inside its bin, so it is off by
at most the bin's width: a p95 of 130 ms reads between 100 and 200 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Upper bounds of the bins, in milliseconds; the last bin holds everything slower.
BOUNDS_MS: tuple[float, ...] = (
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
    2000,
    5000,
    10000,
    30000,
)
BINS = len(BOUNDS_MS) + 1


def empty() -> list[int]:
    return [0] * BINS


def bin_of(milliseconds: float) -> int:
    for index, bound in enumerate(BOUNDS_MS):
        if milliseconds <= bound:
            return index
    return BINS - 1


def merged(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = empty()
    for counts in histograms:
        for index, count in enumerate(counts):
            total[index] += count
    return total


def quantile(counts: Sequence[int], fraction: float) -> float | None:
    """The `fraction` quantile (0.95: p95) in milliseconds, interpolated inside its bin;
    None without a sample. The open last bin reads as its lower bound."""
    total = sum(counts)
    if total == 0:
        return None
    wanted = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= wanted:
            low = BOUNDS_MS[index - 1] if index > 0 else 0.0
            if index == BINS - 1:
                return float(low)
            high = BOUNDS_MS[index]
            return round(low + (high - low) * (wanted - seen) / count, 2)
        seen += count
    return float(BOUNDS_MS[-1])


def text(counts: Sequence[int]) -> str:
    """As stored: the counts separated by commas, trailing zeros left out."""
    last = max((i for i, c in enumerate(counts) if c), default=-1)
    return ",".join(str(c) for c in counts[: last + 1])


def parse(stored: str) -> list[int]:
    counts = empty()
    for index, part in enumerate(stored.split(",")[:BINS] if stored else ()):
        counts[index] = int(part)
    return counts
