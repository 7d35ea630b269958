"""Buckets read back for any range as a bounded number of points, with p50/p95 from the
summed histograms; the API's answer for every range the dashboard offers and for any
since/until."""

from __future__ import annotations

import json
import random

import pytest

from pipeline.errors import InvalidInput
from pipeline.series import histogram
from pipeline.series.buckets import BUCKET_SECONDS, Bucket
from pipeline.series.downsample import MAX_POINTS, RANGES, downsample, window
from pipeline.sqlite.store import Store
from receiver.api.series import series_view, window_of

NOW = 1_800_003_600.0


def test_quantiles_come_from_the_histogram_within_a_bin() -> None:
    counts = histogram.empty()
    for ms in [3.0] * 90 + [150.0] * 10:
        counts[histogram.bin_of(ms)] += 1
    assert 2 <= histogram.quantile(counts, 0.5) <= 5  # type: ignore[operator]
    assert 100 <= histogram.quantile(counts, 0.95) <= 200  # type: ignore[operator]
    assert histogram.quantile(histogram.empty(), 0.5) is None
    assert histogram.parse(histogram.text(counts)) == counts


def test_summed_buckets_keep_their_requests_and_their_quantiles_move_with_them() -> None:
    within = window(NOW - 3600, NOW, 60)
    assert within.step == 60 and within.count == 60
    slow, fast = Bucket(), Bucket()
    for _ in range(50):
        slow.add(200, 0.4)
        fast.add(200, 0.004)
    fast.add(503, 0.001)
    points = downsample([(within.since + 10, fast), (within.since + 20, slow)], within)
    assert len(points) == within.count
    first = points[0]
    assert first.requests == 101 and first.by_class == (100, 0, 0, 1)
    assert first.p95_ms is not None and 200 <= first.p95_ms <= 500
    assert first.per_second(60)["2xx"] == round(100 / 60, 3)
    assert all(p.requests == 0 and p.p95_ms is None for p in points[1:])


@pytest.mark.parametrize(
    ("since", "until", "step"),
    [(NOW - 60, NOW, None), (NOW - 3600, NOW, 1), (NOW - 86400, NOW, None),
     (NOW - 7 * 86400, NOW, 10), (NOW - 31 * 86400, NOW, None), (NOW - 3599.5, NOW - 7, 13)],
)  # fmt: skip
def test_any_range_has_at_most_max_points_of_whole_buckets(
    since: float, until: float, step: int | None
) -> None:
    within = window(since, until, step)
    assert 0 < within.count <= MAX_POINTS
    assert within.step % BUCKET_SECONDS == 0 and within.step >= (step or 0)
    assert within.since <= since and within.until >= until


def test_a_range_backwards_or_too_long_is_refused() -> None:
    with pytest.raises(InvalidInput):
        window(NOW, NOW - 10)
    with pytest.raises(InvalidInput):
        window(NOW - 400 * 86400, NOW)
    with pytest.raises(InvalidInput):
        window_of("2h", None, None, None, NOW)


def test_the_api_answer_is_bounded_for_every_range_of_a_full_store(store: Store) -> None:
    """A day of 10 s buckets, every one busy: the answer for 1h, 6h and 24h stays small."""
    app = store.create_app("shop")
    rng = random.Random(7)
    day = {}
    for at in range(int(NOW - 86400) // 10 * 10, int(NOW), BUCKET_SECONDS):
        bucket = Bucket()
        for _ in range(rng.randint(20, 40)):
            bucket.add(rng.choice((200, 200, 200, 404, 500)), rng.expovariate(1 / 0.05))
        day[("shop", at)] = bucket
    store.series.add(day)
    sizes = {}
    for name, seconds in RANGES.items():
        view = series_view(store, app, window_of(name, None, None, None, NOW))
        assert len(view.points) <= MAX_POINTS
        assert view.until - view.since >= seconds
        sizes[name] = len(json.dumps(view.model_dump()))
        total = sum(p.requests for p in view.points)
        expected = sum(b.requests for (_, at), b in day.items() if view.since <= at < view.until)
        assert total == expected
    assert max(sizes.values()) < 100_000, sizes
