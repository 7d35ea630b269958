"""The graphs drawn on the server: marks at the x of their time, both sides of a canary's
switch, an app's hour with its deploys marked, and the apps page's small lines.

Records are real (a migrated SQLite store, the state machine, a traffic record made by the
switch's own code from access-log lines); pages are rendered as the routes render them.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from pipeline.release.records import TrafficRecord
from pipeline.release.states import ReleaseState as S
from pipeline.release.transition import transition
from pipeline.series.buckets import BUCKET_SECONDS, Bucket, floor
from pipeline.series.switch import SwitchGraph
from pipeline.settings import Settings
from pipeline.sqlite.models import ReleaseSource
from pipeline.sqlite.store import Store
from pipeline.traefik.traffic import traffic_report
from receiver.api.series import series_view, window_of
from receiver.api.views import app_view, release_view
from receiver.dashboard.charts import LEFT, RIGHT, WIDTH, Series, time_chart
from receiver.dashboard.graphs import app_graphs, sparkline
from receiver.dashboard.pages import Frame, app_page, apps_page
from receiver.dashboard.release import release_page
from receiver.dashboard.templating import render_page
from tests.series.lines import line

MARK_RE = re.compile(
    r'<g class="mark mark-(\w+)" data-kind="[^"]*" data-at="([^"]+)" data-x="([^"]+)">'
    r"<title>([^<]*)</title>"
)
PLOT = WIDTH - RIGHT - LEFT
OLD, NEW = "http://10.0.0.2:5000", "http://10.0.0.3:5000"


def marks(page: str) -> list[tuple[str, float, float, str]]:
    return [(kind, float(at), float(x), label) for kind, at, x, label in MARK_RE.findall(page)]


def test_a_mark_is_drawn_at_the_x_of_its_time() -> None:
    since = 1_800_000_000.0
    times = [since + i * 10 for i in range(360)]
    chart = time_chart(
        "t", "requests/s", times, 10, [Series("2xx", "c-green", [1.0] * 360)],
        [(since + 900, "deploy", "v2 deployed"), (since + 3600, "scale", "scaled"),
         (since - 5, "deploy", "before the range: not drawn")],
    )  # fmt: skip
    assert [(m.label, m.x) for m in chart.marks] == [
        ("v2 deployed", round(LEFT + PLOT * 0.25, 1)),
        ("scaled", float(WIDTH - RIGHT)),
    ]
    assert len(chart.columns) == 360 and chart.columns[0].title.endswith("2xx 1 (requests/s)")
    assert chart.x_ticks[0].label == "08:00" and len(chart.x_ticks) <= 7
    lone = time_chart("t", "ms", times[:4], 10, [Series("p95", "c-blue", [None, 5.0, None, 7.0])])
    assert lone.lines[0].segments == () and len(lone.lines[0].dots) == 2  # drawn as dots


def test_a_canary_release_page_draws_both_releases_side_by_side(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    app = store.create_app("demo")
    live = store.create_release(app, source=ReleaseSource.PUSH, commit="a" * 40)
    canary = store.create_release(
        app, source=ReleaseSource.PUSH, commit="b" * 40, strategy="canary"
    )
    for state in (S.BUILDING, S.BOOTING, S.HEALTH_CHECKING, S.CANARY):
        canary = transition(store, app.name, canary, state)
    began = time.time()
    time.sleep(0.05)
    for state in (S.SWITCHING, S.LIVE):
        canary = transition(store, app.name, canary, state)
    switched = store.events(canary.pk)[-2].at
    # What Traefik logged: 10% to the canary from its first step, all of it after the switch.
    log = tmp_path / "access.log"
    start, end = began - 12, switched + 3
    lines = []
    for i in range(int((end - start) * 20)):
        at = start + i / 20
        server = NEW if at >= switched or (at >= began and i % 10 == 0) else OLD
        lines.append(line(at, host="demo.localhost", server=server, ms=4 if server == OLD else 6))
    log.write_text("\n".join(lines) + "\n")
    graph = SwitchGraph(
        began - 10, switched, end, {OLD: f"v{live.number}", NEW: f"v{canary.number}"}
    )
    report = traffic_report(log, {"demo.localhost"}, switched, end, graph)
    steps = [{"weight": 10, "seconds": round(switched - began, 3), "passed": True, "reason": "ok",
              "canary": {"requests": 1, "errors": 0, "error_rate": 0.0},
              "live": {"requests": 9, "errors": 0, "error_rate": 0.0}}]  # fmt: skip
    document = {**report.to_dict(), "series": graph.record(),
                "canary": {"decision": "promoted", "reason": "ok", "steps": steps}}  # fmt: skip
    store.add_traffic(canary.pk, TrafficRecord.model_validate(document))
    view = release_view(store, store.get_release(canary.pk))
    body = release_page(app_view(store, settings, {}, app), view, [], 0, False, time.time())
    page = render_page(Frame("demo v2"), body)
    assert 'class="card graphs switch-graphs"' in page
    for series in ("v1 requests", "v2 requests", "v1 p95", "v2 p95"):
        assert f'data-series="{series}"' in page, series
    drawn = marks(page)
    kinds = [kind for kind, *_ in drawn]
    assert kinds.count("gate") == 2 and kinds.count("switch") == 2  # on both charts
    assert kinds.count("canary") == 2
    switch_mark = next(m for m in drawn if m[0] == "switch")
    assert abs(switch_mark[1] - store.events(canary.pk)[-1].at) < 1e-6
    # The table holds the same requests as the report, second by second.
    cells = re.findall(r'<td data-label="v(\d) requests">(\d+)</td>', page)
    assert sum(int(n) for _, n in cells) >= report.requests + report.before["requests"]


def test_the_app_page_marks_each_deploy_at_its_time(store: Store, settings: Settings) -> None:
    app = store.create_app("shop")
    now = time.time()
    hour = {}
    for at in range(floor(now - 3600), floor(now), BUCKET_SECONDS):
        bucket = Bucket()
        for i in range(50):
            bucket.add(200 if i else 503, 0.01)
        hour[("shop", at)] = bucket
    store.series.add(hour)
    for _ in range(2):
        release = store.create_release(app, source=ReleaseSource.PUSH, commit="c" * 40)
        for state in (S.BUILDING, S.BOOTING, S.HEALTH_CHECKING, S.SWITCHING, S.LIVE):
            release = transition(store, app.name, release, state)
    store.series.mark(app, "maintenance", "maintenance on", at=now - 1800)
    view = series_view(store, app, window_of("1h", None, None, None, now + 1))
    graphs = app_graphs(view)
    page = render_page(
        Frame("shop"), app_page(app_view(store, settings, {}, app), [], graphs=graphs)
    )
    switches = [
        e.at for r in store.releases(app) for e in store.events(r.pk) if e.state == S.SWITCHING
    ]
    drawn = [m for m in marks(page) if m[0] == "deploy"]
    assert len(drawn) == 2 * len(graphs.charts)
    chart = graphs.charts[0]
    for at in switches:
        assert any(abs(m[1] - at) < 1e-6 and m[2] == chart.x(at) for m in drawn), at
    maintenance = next(m for m in marks(page) if m[0] == "maintenance")
    assert abs(maintenance[2] - chart.x(now - 1800)) < 0.2
    for name in ("2xx", "3xx", "4xx", "5xx", "p95", "restarts"):
        assert f'data-series="{name}"' in page
    assert "?range=6h#traffic" in page and 'aria-current="true">1h<' in page


def test_the_apps_page_draws_an_hour_per_app(store: Store, settings: Settings) -> None:
    until = 1_800_003_600
    line_ = sparkline([(until - 3600 + i * 10, i % 7) for i in range(360)], until - 3600, until)
    assert len(line_.points.split()) == 60 and "requests in the last hour" in line_.title
    app = store.create_app("shop")
    page = render_page(
        Frame("Apps"), apps_page([(app_view(store, settings, {}, app), None, line_)], "")
    )
    assert '<svg class="sparkline' in page and line_.points in page


def test_labels_that_would_overlap_are_set_on_different_rows() -> None:
    """A canary's last step and the switch a little later, near the right edge: the step's
    label is set right of its line, the switch's left of its own, across the same pixels."""
    since = 1_800_000_000.0
    times = [since + i for i in range(12)]
    chart = time_chart(
        "t", "requests/s", times, 1, [Series("v1", "c-blue", [1.0] * 12)],
        [(since + 1, "canary", "canary 10%"), (since + 1.1, "gate", "gate passed"),
         (since + 8.0, "canary", "canary 50%"), (since + 10.2, "switch", "switch confirmed"),
         (since + 11.5, "drain", "drain done")],
    )  # fmt: skip
    rows = {m.label: m.row for m in chart.marks}
    spans = {
        m.label: (m.x + 3, m.x + 3 + 6.6 * len(m.label))
        if m.anchor == "start"
        else (m.x - 3 - 6.6 * len(m.label), m.x - 3)
        for m in chart.marks
    }
    assert [m.anchor for m in chart.marks] == ["start", "start", "start", "end", "end"]
    for one in spans:
        for other in spans:
            if one < other and rows[one] == rows[other]:
                (a, b), (c, d) = spans[one], spans[other]
                assert b < c or d < a, (one, other, rows, spans)
    assert rows["canary 10%"] == 0 and rows["gate passed"] == 1
