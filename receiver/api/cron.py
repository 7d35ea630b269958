"""The API of scheduled jobs (`[[cron]]`): the live release's entries with their next and last
runs, the recorded runs, and one entry run now.

`POST /api/apps/<app>/cron/<name>/run` answers 202 with the run's record as it starts (or as
`skipped`, with overlap "skip" while the entry's last run still runs); its end is read from
`GET /api/apps/<app>/cron/runs`.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Query

from pipeline.cron import schedule
from pipeline.sqlite.models import App, CronRun, CronSource, CronState
from receiver.api.apps import DaemonDep, PrincipalDep, app_for, app_to_change
from receiver.api.views import View
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class CronRunView(View):
    id: int
    name: str  # the entry's
    scheduled_at: float  # the time it was due (a manual run: when it was asked for)
    source: CronSource
    state: CronState
    release: int | None  # the release whose image and environment it ran with
    command: str
    container: str | None
    exit_code: int | None  # once it exited by itself
    detail: str | None  # why it ended, when the command did not say
    output: str  # the last lines it printed
    started_at: float | None
    ended_at: float | None


class CronEntryView(View):
    name: str
    schedule: str
    command: str
    timezone: str
    timeout: float
    overlap: str
    catch_up: bool
    release: int  # the live release whose temps.toml declares it
    next_run: float | None  # seconds since the epoch
    last_run: CronRunView | None


def _view(run: CronRun | None) -> CronRunView | None:
    return None if run is None else CronRunView.model_validate(run)


@router.get("/apps/{name}/cron")
def list_entries(name: str, daemon: DaemonDep, who: PrincipalDep) -> list[CronEntryView]:
    """The live release's `[[cron]]` entries, each with its next time and its last run."""
    return cron_view(daemon, app_for(daemon, who, name))


def cron_view(daemon: Daemon, app: App) -> list[CronEntryView]:
    """The app's entries as its live release declares them (the dashboard's table too)."""
    live = daemon.store.live_release(app)
    if live is None:
        return []
    now = time.time()
    return [
        CronEntryView(
            name=entry.name,
            schedule=entry.schedule,
            command=entry.command,
            timezone=entry.timezone,
            timeout=entry.timeout,
            overlap=entry.overlap,
            catch_up=entry.catch_up,
            release=live.number,
            next_run=schedule.next_after(entry.schedule, entry.timezone, now),
            last_run=_view(daemon.store.cron.latest(app, entry.name)),
        )
        for entry in live.config.cron
    ]


@router.get("/apps/{name}/cron/runs")
def list_cron_runs(
    name: str,
    daemon: DaemonDep,
    who: PrincipalDep,
    job: str | None = None,
    limit: int = Query(100, ge=1, le=2000),
) -> list[CronRunView]:
    """The app's recorded cron runs (of one entry, with `job`), newest scheduled time first."""
    app = app_for(daemon, who, name)
    return [CronRunView.model_validate(run) for run in daemon.store.cron.of(app, job, limit)]


@router.post("/apps/{name}/cron/{job}/run", status_code=202)
def run_entry(name: str, job: str, daemon: DaemonDep, who: PrincipalDep) -> CronRunView:
    """Run the entry now, from the live release, recorded as a manual run."""
    app = app_to_change(daemon, who, name)
    return CronRunView.model_validate(daemon.cron.run_now(app, job))
