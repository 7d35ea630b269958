"""An app's traffic over time, as its dashboard page draws it: requests per second by status
class, p50/p95 latency and container restarts, at most `MAX_POINTS` points for any range,
with its deploys, rollbacks, flips back, scales and maintenance changes as marks.

`range=1h|6h|24h` (default 1h, ending now), or `since` and `until` (seconds since the
epoch) with an optional `step`, widened as the bound on points needs. Read with any token
that may read the app (`app_for`).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from pipeline.errors import InvalidInput
from pipeline.release.states import ReleaseState
from pipeline.series.buckets import BUCKET_SECONDS
from pipeline.series.downsample import LONGEST, RANGES, Window, downsample, window
from pipeline.sqlite.models import App, ReleaseSource
from pipeline.sqlite.store import Store
from receiver.api.apps import DaemonDep, PrincipalDep, app_for
from receiver.api.views import View
from receiver.problems import ERROR_RESPONSES

router = APIRouter(responses=ERROR_RESPONSES)


class SeriesPoint(View):
    at: int  # the start of its step, seconds since the epoch
    requests: int
    per_second: dict[str, float]  # requests per second by status class: 2xx 3xx 4xx 5xx
    p50_ms: float | None  # from a latency histogram: within its bin (1, 2, 5, 10, 20 ... ms)
    p95_ms: float | None
    restarts: int  # web containers found started again


class SeriesMarkView(View):
    at: float
    kind: str  # deploy, rollback, flip back, scale, maintenance
    label: str


class SeriesView(View):
    app: str
    since: int
    until: int
    step: int  # seconds per point
    bucket_seconds: int  # what is stored: points are whole numbers of them
    points: list[SeriesPoint]
    marks: list[SeriesMarkView]


def series_view(store: Store, app: App, within: Window) -> SeriesView:
    points = downsample(store.series.buckets(app, within.since, within.until), within)
    return SeriesView(
        app=app.name,
        since=within.since,
        until=within.until,
        step=within.step,
        bucket_seconds=BUCKET_SECONDS,
        points=[
            SeriesPoint(
                at=p.at,
                requests=p.requests,
                per_second=p.per_second(within.step),
                p50_ms=p.p50_ms,
                p95_ms=p.p95_ms,
                restarts=p.restarts,
            )
            for p in points
        ],
        marks=marks_of(store, app, within),
    )


def marks_of(store: Store, app: App, within: Window) -> list[SeriesMarkView]:
    found = [
        SeriesMarkView(at=mark.at, kind=mark.kind, label=mark.label)
        for mark in store.series.marks(app, within.since, within.until)
    ]
    for release in store.series.release_marks(app, within.since, within.until):
        label = f"v{release.number}"
        if release.state == ReleaseState.FAILED:
            if release.failed_step != "bake":
                continue  # failed before any switch: nothing changed for the requests
            found.append(
                SeriesMarkView(at=release.at, kind="flip back", label=f"{label} flipped back")
            )
        elif release.source == ReleaseSource.ROLLBACK:
            found.append(
                SeriesMarkView(at=release.at, kind="rollback", label=f"rollback to {label}")
            )
        else:
            found.append(SeriesMarkView(at=release.at, kind="deploy", label=f"{label} deployed"))
    return sorted(found, key=lambda mark: mark.at)


def window_of(
    range_: str | None, since: float | None, until: float | None, step: int | None, now: float
) -> Window:
    """The window a request names: a range ending now, or since/until."""
    if since is None and until is None:
        seconds = RANGES.get(range_ or "1h")
        if seconds is None:
            raise InvalidInput(f"range is one of {', '.join(RANGES)}")
        return window(now - seconds, now, step)
    if range_ is not None:
        raise InvalidInput("give a range, or since and until, not both")
    return window(since if since is not None else now - RANGES["1h"], until or now, step)


@router.get("/api/apps/{name}/series")
async def get_series(
    name: str,
    daemon: DaemonDep,
    who: PrincipalDep,
    range_: Annotated[str | None, Query(alias="range")] = None,
    since: float | None = None,
    until: float | None = None,
    step: Annotated[int | None, Query(ge=1, le=LONGEST)] = None,
) -> SeriesView:
    within = window_of(range_, since, until, step, time.time())
    app = await run_in_threadpool(app_for, daemon, who, name)
    return await run_in_threadpool(series_view, daemon.store, app, within)
