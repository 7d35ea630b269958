"""One scheduled time as a story: claimed by its row, run in a one-off container of the
release live when it is due, ended with its exit code and last lines, notified if it failed.

The container is the live web container's twin in all but its command (as `temps run`'s):
the release's image, its environment (`PORT` too), the app's volumes and the web process's
limits, in no route. A deploy that switches meanwhile leaves it alone: a run that started on
the old release finishes there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pipeline.app.config import CronEntry
from pipeline.context import Context
from pipeline.errors import CommandTimedOut, TempsError
from pipeline.runtime import ContainerSpec
from pipeline.sqlite.models import App, CronRun, CronSource, CronState, Release
from pipeline.steps import notify
from pipeline.steps.build import one_off_spec

log = structlog.get_logger()
PROCESS = "cron"  # its `temps.process` label, and the start of its container's role
OUTPUT_LINES = 50  # the last lines of a run's output kept in its record
LINE_CHARS = 500  # ...each cut to this many characters


@dataclass(frozen=True)
class Due:
    """A time an entry of an app is due, and why it runs."""

    app: App
    entry: CronEntry
    scheduled_at: float
    source: CronSource


def claim(ctx: Context, due: Due, live: Release) -> CronRun | None:
    """Record the time: running, or skipped while the last run of the entry runs; None when
    it was recorded before (by another thread, or another daemon)."""
    entry = due.entry
    run = ctx.store.cron.claim(
        due.app,
        entry.name,
        due.scheduled_at,
        due.source,
        overlap=entry.overlap == "allow",
        release=live.number,
        command=entry.command,
    )
    fields = {"app": due.app.name, "job": entry.name, "scheduled_at": due.scheduled_at}
    if run is None:
        log.info("cron.already_recorded", **fields)
    elif run.state == CronState.SKIPPED:
        log.info("cron.skipped", **fields, run=run.pk, detail=run.detail)
    return run


class Tail:
    """The last lines of a stream that arrives in chunks."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=OUTPUT_LINES)
        self._partial = ""

    def add(self, chunk: str) -> None:
        *complete, self._partial = (self._partial + chunk).split("\n")
        self.lines.extend(line[:LINE_CHARS] for line in complete)
        self._partial = self._partial[-LINE_CHARS:]

    def text(self) -> str:
        lines = [*self.lines, self._partial] if self._partial else list(self.lines)
        return "\n".join(lines[-OUTPUT_LINES:])


def run(
    ctx: Context, app: App, entry: CronEntry, claimed: CronRun, release: Release
) -> CronRun | None:
    """Run the claimed time to its end, from `release`; the record as it ended."""
    bound = log.bind(app=app.name, job=entry.name, run=claimed.pk, release=f"v{release.number}")
    bound.info("cron.started", source=str(claimed.source))
    tail = Tail()
    state, exit_code, detail = _outcome(ctx, app, entry, claimed, release, tail)
    ended = ctx.store.cron.ended(claimed.pk, state, exit_code, tail.text(), detail)
    bound.info("cron.finished", source=str(claimed.source), state=str(state),
               exit_code=exit_code, detail=detail)  # fmt: skip
    if ended is not None and state in (CronState.FAILED, CronState.TIMED_OUT):
        try:
            current = ctx.store.get_app(app.name)  # its notification settings as they are now
        except TempsError:
            return ended  # destroyed meanwhile: nobody to tell
        notify.send_cron_failed(ctx.sealer, current, ended)
    return ended


def run_backup(
    ctx: Context, app: App, claimed: CronRun, backup: Callable[[App], str | None]
) -> CronRun | None:
    """A backup the app's `[backup] schedule` asked for, recorded as the job `backup`: it
    succeeded once the backup verified (`backup` answers None), else failed with why (a
    failed backup is notified as such by the backup itself)."""
    bound = log.bind(app=app.name, job=claimed.name, run=claimed.pk)
    bound.info("cron.backup_started", source=str(claimed.source))
    why = backup(app)
    state = CronState.SUCCEEDED if why is None else CronState.FAILED
    ended = ctx.store.cron.ended(claimed.pk, state, None, "", why)
    bound.info("cron.finished", source=str(claimed.source), state=str(state), detail=why)
    return ended


def _outcome(
    ctx: Context, app: App, entry: CronEntry, claimed: CronRun, release: Release, tail: Tail
) -> tuple[CronState, int | None, str | None]:
    """How the command ended: its state, its exit code when it exited, why otherwise."""
    try:
        spec = container_spec(ctx, app, release, entry)
        ctx.store.cron.started(claimed.pk, spec.name)
        what = f"cron job {entry.name!r}"
        exit_code = ctx.runtime.run_once(spec, entry.command, tail.add, entry.timeout, what)
    except CommandTimedOut:
        return CronState.TIMED_OUT, None, f"still running after {entry.timeout:g} s: stopped"
    except TempsError as error:
        return CronState.FAILED, None, str(error)
    return (CronState.SUCCEEDED if exit_code == 0 else CronState.FAILED), exit_code, None


def container_spec(ctx: Context, app: App, release: Release, entry: CronEntry) -> ContainerSpec:
    role = f"{PROCESS}-{entry.name}"
    return one_off_spec(ctx, app, release, PROCESS, role, labels={"temps.role": PROCESS})
