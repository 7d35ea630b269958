"""A switch's graph is made from the traffic report's own lines: its buckets from the switch
on add up to the report's requests and errors, its earlier ones to `before`, side by side
for the releases that answered."""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.release.records import TrafficRecord
from pipeline.series.switch import MAX_BUCKETS, OTHER, SwitchGraph
from pipeline.traefik.traffic import traffic_report
from tests.series.lines import line

SWITCH = 1_800_000_000.25
OLD, NEW = "http://10.0.0.2:5000", "http://10.0.0.3:5000"


def test_the_graph_sums_to_the_report_and_splits_by_release(tmp_path: Path) -> None:
    rng = random.Random(3)
    log = tmp_path / "access.log"
    lines = []
    end = SWITCH + 6  # a whole number of buckets: `before` is whole buckets too
    for at in sorted(rng.uniform(SWITCH - 30, end + 3) for _ in range(3000)):
        # Some before the graph, some after the report's end.
        server = OLD if at < SWITCH + 0.02 else NEW
        status = rng.choice((200,) * 30 + (404, 502))
        lines.append(line(at, status=status, server=server if status != 502 else "", ms=3))
    log.write_text("\n".join(lines) + "\n")
    graph = SwitchGraph(SWITCH - 10, SWITCH, end, {OLD: "v1", NEW: "v2"})
    report = traffic_report(log, {"shop.localhost"}, SWITCH, end, graph)
    series = graph.record()
    record = TrafficRecord.model_validate({**report.to_dict(), "series": series})
    assert record.series is not None
    during = record.series.totals(SWITCH)
    assert (during.requests, during.errors) == (report.requests, report.errors)
    before = record.series.totals(SWITCH - report.window_seconds)
    assert before.requests - during.requests == report.before["requests"]
    assert report.requests > 300 and report.errors > 10
    assert set(series.sides) == {"v1", "v2", OTHER}
    assert series.step == 1.0 and series.start <= SWITCH - 10
    assert series.switch_at == SWITCH and (SWITCH - series.start) % series.step == 0
    first_new = next(i for i, n in enumerate(series.sides["v2"].requests) if n)
    assert series.at(first_new) <= SWITCH < series.at(first_new + 1)
    assert series.sides["v1"].p95_ms[0] == 3.0


def test_a_long_window_has_wider_buckets_not_more() -> None:
    graph = SwitchGraph(SWITCH - 600, SWITCH, SWITCH + 3600, {})
    assert graph.count <= MAX_BUCKETS and graph.step >= 14
