"""Traefik's access log read as it grows into each app's buckets: the real parsing, the
real position file, a rotation, and a real SQLite store."""

from __future__ import annotations

import os
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pipeline import metrics
from pipeline.series.buckets import BUCKET_SECONDS, CLASSES, aggregate
from pipeline.series.collect import SeriesCollector
from pipeline.series.reader import AccessLogReader
from pipeline.settings import Settings
from pipeline.sqlite.store import Store
from pipeline.traefik.traffic import Entry, parse_line
from tests.series.lines import line

T0 = 1_800_000_000  # a multiple of the bucket
HOSTS = {"shop.localhost": "shop", "www.shop.test": "shop", "blog.localhost": "blog"}


def write(path: Path, *lines: str, mode: str = "a") -> None:
    with open(path, mode) as handle:
        handle.write("".join(text + "\n" for text in lines))


def test_lines_are_summed_per_app_bucket_and_status_class(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(
        log,
        line(T0 + 1, status=200, ms=3),
        line(T0 + 2, host="www.shop.test", status=201, ms=40, router="shop_tls_www@file"),
        line(T0 + 3, status=304),
        line(T0 + 4, status=404),
        line(T0 + 5, status=502, server=""),
        line(T0 + 6, status=0),  # the client left
        line(T0 + 7, status=301, router="shop_redirect@file"),  # to HTTPS: never the app's
        line(T0 + 8, host="other.localhost"),
        line(T0 + BUCKET_SECONDS + 1, host="blog.localhost", ms=700),
    )
    reader = AccessLogReader(log, tmp_path / "position")
    buckets = aggregate(reader.read(), HOSTS)
    shop = buckets[("shop", T0)]
    assert shop.classes == [2, 1, 1, 2]
    assert shop.latency[1] == 4  # 1-2 ms: the lines of 2 ms
    assert shop.latency[5] == 1  # 20-50 ms
    assert buckets[("blog", T0 + BUCKET_SECONDS)].classes == [1, 0, 0, 0]
    assert set(buckets) == {("shop", T0), ("blog", T0 + BUCKET_SECONDS)}


def test_the_position_is_remembered_a_partial_line_waits_and_a_rotation_is_followed(
    tmp_path: Path,
) -> None:
    log, position = tmp_path / "access.log", tmp_path / "position"
    write(log, line(T0 + 1), line(T0 + 2))
    reader = AccessLogReader(log, position)
    assert len(reader.read()) == 2
    reader.save()
    with open(log, "a") as handle:
        handle.write(line(T0 + 3) + "\n" + line(T0 + 4)[:20])  # Traefik mid-write
    again = AccessLogReader(log, position)  # a daemon started again
    assert [e.started for e in again.read()] == [T0 + 3]
    with open(log, "a") as handle:
        handle.write(line(T0 + 4)[20:] + "\n")
    assert [e.started for e in again.read()] == [T0 + 4]
    # Rotated as pipeline.traefik.process does it: the rest of the old file, then the new.
    write(log, line(T0 + 5))
    os.replace(log, tmp_path / "access.log.1")
    write(log, line(T0 + 6), mode="w")
    assert [e.started for e in again.read()] == [T0 + 5, T0 + 6]
    assert again.read() == []


def test_a_backlog_is_read_a_bounded_chunk_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log, *(line(T0 + i / 100) for i in range(1000)))
    reader = AccessLogReader(log, tmp_path / "position", max_bytes=16 * 1024)
    seen = []
    while True:
        taken = reader.read()
        assert len(taken) * len(line(T0)) <= 16 * 1024
        seen += taken
        if not reader.more:
            break
    assert [e.started for e in seen] == [T0 + i / 100 for i in range(1000)]


def test_buckets_add_up_in_the_store_and_retention_forgets_old_ones(store: Store) -> None:
    store.create_app("shop")
    log_lines = [line(T0 + i, ms=5 if i % 2 else 150) for i in range(20)]
    for half in (log_lines[:7], log_lines[7:]):  # a bucket seen over two reads
        store.series.add(aggregate(_entries(half), HOSTS))
    app = store.get_app("shop")
    stored = store.series.buckets(app, T0, T0 + 3600)
    assert [(at, b.requests) for at, b in stored] == [(T0, 10), (T0 + 10, 10)]
    assert sum(stored[0][1].latency) == 10
    store.series.mark(app, "scale", "scaled to web=2", at=T0 + 5)
    assert store.series.count() == 2
    assert store.series.forget(T0 + 10) == 1
    assert [at for at, _ in store.series.buckets(app, 0, T0 + 3600)] == [T0 + 10]
    assert store.series.marks(app, 0, T0 + 3600) == []


def _entries(lines: list[str]) -> list[Entry]:
    return [e for text in lines if (e := parse_line(text.encode())) is not None]


def test_the_collector_stores_each_apps_lines_and_restarts_and_remembers_where_it_was(
    settings: Settings, store: Store
) -> None:
    store.create_app("shop")
    now = time.time()
    write(settings.access_log, *(line(now - 1 - i / 10) for i in range(30)))
    restarted = {"shop": 2}
    collector = SeriesCollector(settings, store, lambda: restarted.copy())
    collector.check_now()
    restarted.clear()
    write(settings.access_log, line(now), line(now, host="unknown.localhost"))
    SeriesCollector(settings, store, dict).check_now()  # a daemon started again
    buckets = store.series.buckets(store.get_app("shop"), now - 3600, now + 3600)
    assert sum(b.requests for _, b in buckets) == 31
    assert sum(b.restarts for _, b in buckets) == 2


def requests_counted(app: str) -> dict[str, float]:
    """temps_app_requests_total of `app` by status class, as /metrics renders it."""
    text = metrics.render(metrics.registry_for([]))
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "temps_app_requests_total" and sample.labels["app"] == app:
                counted[sample.labels["class"]] = sample.value
    return counted


def test_the_collector_counts_each_apps_requests_by_class_for_metrics(
    settings: Settings, store: Store
) -> None:
    store.create_app("shop")
    before = requests_counted("shop")
    now = time.time()
    statuses = [200] * 5 + [301, 404, 404, 502, 0]
    write(settings.access_log, *(line(now - 1, status=status) for status in statuses))
    write(settings.access_log, line(now, host="unknown.localhost", status=500))
    SeriesCollector(settings, store, dict).check_now()
    after = requests_counted("shop")
    added = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in CLASSES}
    assert added == {"2xx": 5, "3xx": 1, "4xx": 2, "5xx": 2}
