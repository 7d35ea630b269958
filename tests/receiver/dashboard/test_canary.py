"""A canary's figures on the release page: its decision, and each step's requests, errors and
latency for the canary and the live release side by side.

Releases are recorded in a real SQLite store and moved through the real state machine, with
the traffic record the canary writes (pipeline.deploy.strategies.canary); the page is
rendered from the same views the dashboard's route reads. No Docker: nothing here runs a container.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.release.records import TrafficRecord
from pipeline.release.states import Failure
from pipeline.release.states import ReleaseState as S
from pipeline.release.transition import transition
from pipeline.settings import Settings
from pipeline.sqlite.models import ReleaseSource
from pipeline.sqlite.store import Store
from receiver.api.views import app_view, release_view
from receiver.dashboard.formats import canary, milliseconds, percent, traffic
from receiver.dashboard.pages import Frame
from receiver.dashboard.release import release_page
from receiver.dashboard.templating import render_page

HOSTILE = '<script>alert("x")</script>'
STEPS_RE = re.compile(r'<table class="table canary-steps">(.*?)</table>', re.S)
ROW_RE = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL_RE = re.compile(r'<td data-label="([^"]+)"[^>]*>(.*?)</td>', re.S)
GATED = (S.BUILDING, S.BOOTING, S.HEALTH_CHECKING, S.CANARY)


def served(requests: int, errors: int, p50: float | None, p95: float | None) -> dict[str, Any]:
    """One side's figures as pipeline.traefik.traffic.Served.to_dict writes them."""
    rate = round(errors / requests, 4) if requests else 0.0
    return {"requests": requests, "errors": errors, "p50_ms": p50, "p95_ms": p95,
            "error_rate": rate}  # fmt: skip


FAILED_STEP = {
    "weight": 10,
    "seconds": 12.3,
    "canary": served(120, 4, 3.1, 9.8),
    "live": served(1080, 1, 2.9, 8.7),
    "passed": False,
    "reason": "canary errors 4 of 120 requests (3.3%)",
}
WITHDRAWN = {
    "decision": "withdrawn",
    "reason": "canary errors 4 of 120 requests (3.3%) against 1 of 1080 (0.1%)",
    "steps": [FAILED_STEP],
    "requests_until_withdrawn": 130,
    "errors_until_withdrawn": 4,
}
PROMOTED = {
    "decision": "promoted",
    "reason": "promoted by hand",
    "steps": [
        {"weight": 10, "seconds": 60.0, "canary": served(200, 0, 2.5, 6.5),
         "live": served(1800, 2, 2.6, 7.0), "passed": True, "reason": "canary 200 requests"},
        {"weight": 50, "seconds": 0.4, "canary": served(0, 0, None, None),
         "live": served(3, 0, 2.4, 2.4), "passed": True, "reason": "promoted by hand"},
    ],
}  # fmt: skip
SWITCH = {"window_seconds": 2.5, "requests": 1234, "errors": 0, "before": {"requests": 1100,
          "errors": 0}}  # fmt: skip


def record(document: dict[str, Any] | None) -> TrafficRecord | None:
    return None if document is None else TrafficRecord.model_validate(document)


def release_page_of(
    store: Store,
    settings: Settings,
    states: tuple[S, ...],
    traffic: dict[str, Any] | None,
    failure: Failure | None = None,
) -> str:
    """Record a canary release that went through `states` with this traffic record, and
    render its page as the dashboard's route does."""
    app = store.create_app("demo")
    release = store.create_release(
        app, source=ReleaseSource.PUSH, commit="0123456789abcdef", strategy="canary"
    )
    for state in states:
        ending = failure if state == S.FAILED else None
        release = transition(store, app.name, release, state, failure=ending)
    if traffic is not None:
        store.add_traffic(release.pk, TrafficRecord.model_validate(traffic))
    view = release_view(store, store.get_release(release.pk))
    running = view.state == S.CANARY
    body = release_page(
        app_view(store, settings, {}, app), view, ["-----> canary"], 1, running, time.time()
    )
    return render_page(Frame("demo v1"), body)


def step_rows(page: str) -> list[dict[str, str]]:
    """Each row of the canary's steps table as {data-label: cell}."""
    table = STEPS_RE.search(page)
    assert table, f"no canary steps table on the page:\n{page}"
    rows = [row for row in ROW_RE.findall(table.group(1)) if "<td" in row]
    return [dict(CELL_RE.findall(row)) for row in rows]


def canary_section(page: str) -> str:
    found = re.search(r'<section class="card canary">(.*?)</section>', page, re.S)
    assert found, f"no Canary section on the page:\n{page}"
    return found.group(1)


def test_canary_figures_are_worded_as_the_page_shows_them() -> None:
    assert percent(0.0333) == "3.3%" and percent(0) == "0.0%" and percent(1) == "100.0%"
    assert milliseconds(None) == "-", "a side without a sample has no percentile"
    assert milliseconds(9.8) == "9.8" and milliseconds(0.42) == "0.42"
    assert milliseconds(1234.5) == "1,234"
    figures = canary(record({"canary": WITHDRAWN}))
    assert figures is not None and figures.tone == "bad" and figures.hurt == "4 of 130 requests"
    (step,) = figures.steps
    assert (step.weight, step.seconds, step.passed) == ("10%", "12 s", False)
    assert step.canary.error_rate == "3.3%" and step.live.error_rate == "0.1%"
    running = canary(record({"canary": {"decision": "running", "reason": "", "steps": []}}))
    assert running is not None and running.tone == "info" and running.steps == ()
    for nothing in (None, {}, SWITCH, {"canary": None}):
        assert canary(record(nothing)) is None, nothing
    # A garbled canary record never reaches the page: the record refuses it.
    for garbled in (
        {"canary": "garbled"},
        {"canary": {"decision": 3, "steps": "x"}},
        {"canary": {"decision": "running", "steps": []}},  # without its reason
    ):
        with pytest.raises(ValidationError):
            TrafficRecord.model_validate(garbled)
    # A canary withdrawn before any switch has no switch traffic to show.
    assert traffic(record({"canary": WITHDRAWN})) is None and traffic(record({})) is None
    assert traffic(record({**SWITCH, "canary": PROMOTED})) is not None


def test_withdrawn_canary_shows_each_side_and_the_requests_hurt(
    store: Store, settings: Settings
) -> None:
    failure = Failure(reason="canary withdrawn: canary errors 4 of 120", step=S.CANARY)
    page = release_page_of(store, settings, (*GATED, S.FAILED), {"canary": WITHDRAWN}, failure)

    section = canary_section(page)
    assert "<h2>Canary</h2>" in section
    assert '<span class="badge badge-bad" data-decision="withdrawn">withdrawn</span>' in section
    assert "canary errors 4 of 120 requests (3.3%) against 1 of 1080 (0.1%)" in section
    assert '<dt>Requests hurt</dt><dd class="canary-hurt">4 of 130 requests</dd>' in section
    (row,) = step_rows(page)
    assert row["Weight"] == "10%" and row["Time"] == "12 s"
    canary_side = [row[f"Canary {label}"] for label in ("requests", "errors", "error rate")]
    live_side = [row[f"Live {label}"] for label in ("requests", "errors", "error rate")]
    assert canary_side == ["120", "4", "3.3%"] and live_side == ["1,080", "1", "0.1%"]
    assert (row["Canary p50 ms"], row["Canary p95 ms"]) == ("3.1", "9.8")
    assert (row["Live p50 ms"], row["Live p95 ms"]) == ("2.9", "8.7")
    assert '<span class="badge badge-bad">failed</span>' in row["Result"]
    assert "canary errors 4 of 120 requests (3.3%)" in row["Result"]

    assert "<h2>Failed at Canary</h2>" in page
    switch = page.split("<dt>Traffic during switch</dt>", 1)[1].split("</dd>", 1)[0]
    assert '<span class="muted">—</span>' in switch, "a withdrawn canary never switched"


def test_promoted_canary_shows_its_steps_and_the_switch_traffic(
    store: Store, settings: Settings
) -> None:
    report = {**SWITCH, "canary": PROMOTED}
    page = release_page_of(store, settings, (*GATED, S.SWITCHING, S.LIVE), report)

    section = canary_section(page)
    assert '<span class="badge badge-ok" data-decision="promoted">promoted</span>' in section
    assert "promoted by hand" in section and "Requests hurt" not in section
    first, second = step_rows(page)
    assert (first["Weight"], first["Canary requests"], first["Live errors"]) == ("10%", "200", "2")
    assert (first["Canary p50 ms"], first["Canary p95 ms"]) == ("2.5", "6.5")
    assert second["Weight"] == "50%" and second["Time"] == "0.40 s"
    assert (second["Canary p50 ms"], second["Canary p95 ms"]) == ("-", "-"), "no sample"
    assert second["Canary error rate"] == "0.0%" and second["Live p50 ms"] == "2.4"
    assert all('<span class="badge badge-ok">passed</span>' in r["Result"] for r in (first, second))
    assert "0 errors" in page and "1,234 requests" in page, "the switch traffic went missing"


def test_running_canary_is_followed_with_its_figures_so_far(
    store: Store, settings: Settings
) -> None:
    running = {**WITHDRAWN, "decision": "running", "reason": "canary 0 requests so far"}
    del running["requests_until_withdrawn"], running["errors_until_withdrawn"]
    page = release_page_of(store, settings, GATED, {"canary": running})

    section = canary_section(page)
    assert '<span class="badge badge-info" data-decision="running">running</span>' in section
    assert "Requests hurt" not in section and len(step_rows(page)) == 1
    assert 'data-follow="1"' in page
    assert re.search(r'<li class="step step-current"><span class="step-name">Canary</span>', page)


@pytest.mark.parametrize("traffic", [None, {}, SWITCH], ids=["none", "empty", "switch-only"])
def test_release_without_canary_figures_has_no_canary_section(
    store: Store, settings: Settings, traffic: dict[str, Any] | None
) -> None:
    page = release_page_of(store, settings, (S.BUILDING, S.BOOTING), traffic)
    assert "<h2>Canary</h2>" not in page and "canary-steps" not in page


def test_hostile_canary_figures_are_escaped(store: Store, settings: Settings) -> None:
    step = {**FAILED_STEP, "reason": HOSTILE}
    hostile = {**WITHDRAWN, "reason": HOSTILE, "steps": [step]}
    page = release_page_of(store, settings, GATED, {"canary": hostile})

    assert "<script>" not in page
    section = canary_section(page)
    assert section.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") == 2, section
    (row,) = step_rows(page)
    assert row["Canary errors"] == "4"


@pytest.mark.parametrize(
    "canary",
    [
        {**WITHDRAWN, "decision": HOSTILE},
        {**WITHDRAWN, "steps": [{**FAILED_STEP, "weight": HOSTILE}]},
    ],
    ids=["decision", "weight"],
)
def test_a_canary_record_holds_only_its_decisions_and_numbers(canary: dict[str, Any]) -> None:
    """What the page could not word safely never reaches the record: a decision is one of
    three words and a weight a number."""
    with pytest.raises(ValidationError):
        TrafficRecord.model_validate({"canary": canary})
