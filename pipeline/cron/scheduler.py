"""The one thread that keeps every app's schedule: it wakes at the next due time of any
entry of any app's live release, claims each time that came (its row is the lock) and starts
its run on a thread of its own.

Each entry has a cursor: the time up to which its schedule was looked at. A tick runs the
times in (cursor, now] and moves the cursor to now, so a late tick (a loaded machine) runs
what it was late for rather than losing it; with overlap "skip" a second time due while the
first runs is recorded skipped. The cursor is the entry's, by app and name, not the
release's: a deploy or a rollback neither resets nor doubles it. An entry a deploy added
starts from the moment its release went live (seen at the next tick, within LONGEST_SLEEP);
at the daemon's start every entry starts from then.

At the daemon's start, an entry that asks for it (`catch_up`) runs its latest scheduled time
before the start once, if that time is not recorded and the entry was already there then;
nothing is recorded for the times of an entry that does not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from pipeline.app.config import BACKUP_JOB, CronEntry
from pipeline.context import Context
from pipeline.cron import job, schedule
from pipeline.errors import Conflict, NotFound, TempsError
from pipeline.release.states import ReleaseState
from pipeline.sqlite.models import App, CronRun, CronSource, CronState, Release

log = structlog.get_logger()
# The longest the thread sleeps: a deploy that adds an entry is seen within this.
LONGEST_SLEEP = 5.0
# An entry not seen for this long (its app gone, or a release without it) forgets its
# cursor; a deploy's switch, while no release may read as live, is far shorter.
FORGET_AFTER = 600.0
# A tick runs at most this many of an entry's times (the newest): a clock that jumps ahead
# runs a job a few times, not thousands.
MOST_PER_TICK = 10

Key = tuple[int, str]  # app id, entry name


class Scheduler:
    name = "cron"

    def __init__(
        self,
        ctx: Context,
        longest_sleep: float = LONGEST_SLEEP,
        backup: Callable[[App], str | None] | None = None,
    ) -> None:
        """`backup` makes an app's backup (None when it verified, else why not), for the
        apps whose `[backup] schedule` asks for one."""
        self.ctx = ctx
        self.longest_sleep = longest_sleep
        self.backup = backup
        self._cursors: dict[Key, float] = {}
        self._seen: dict[Key, float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = time.time()

    def start(self, now: float | None = None) -> None:
        """Catch up what a stopped daemon missed, then keep the schedule."""
        self._started_at = time.time() if now is None else now
        self.catch_up(self._started_at)
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop scheduling; runs under way stop with the daemon, recorded interrupted (a
        daemon that dies leaves that to its next start, which removes their containers)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            running = self.ctx.store.cron.running_containers()
            # Recorded first: the run's own thread then finds nothing left to end.
            interrupted = self.ctx.store.cron.interrupt_unfinished()
            for name in running:
                self.ctx.runtime.discard(name)
        except TempsError as exc:
            log.error("cron.stop_failed", error=str(exc))
            return
        if interrupted:
            log.warning("cron.runs_interrupted", count=interrupted, containers=running)

    def entries(self) -> list[tuple[App, Release, CronEntry]]:
        """Every entry of every app's live release: not a preview's, not an app's being
        destroyed; an app in maintenance keeps its schedule."""
        lives = self.ctx.store.newest_per_app(ReleaseState.LIVE)
        found = []
        for app in self.ctx.store.list_apps():
            live = lives.get(app.pk)
            if live is None or live.image is None or app.preview_of is not None:
                continue
            if app.destroying_at is not None or app.name in self.ctx.destroying:
                continue
            for entry in [*live.config.cron, *self._backup_entry(live)]:
                if schedule.has_seconds(entry.schedule) and not self.ctx.settings.cron_seconds:
                    continue  # pushed to a daemon that took them: not this one
                found.append((app, live, entry))
        return found

    def _backup_entry(self, live: Release) -> list[CronEntry]:
        """The job `backup`, when the release's `[backup]` has a schedule."""
        wanted = live.config.backup
        if self.backup is None or not wanted.schedule:
            return []
        command = "temps backup create"  # what its records show; no container runs it
        entry = CronEntry(BACKUP_JOB, wanted.schedule, command, wanted.timezone, wanted.timeout)
        return [entry]

    def catch_up(self, now: float) -> None:
        for app, live, entry in self.entries():
            self._cursors[(app.pk, entry.name)] = now
            self._seen[(app.pk, entry.name)] = now
            if not entry.catch_up:
                continue
            missed = schedule.latest_until(entry.schedule, entry.timezone, now)
            if missed is None or self.ctx.store.cron.recorded(app, entry.name, missed):
                continue
            known = self.ctx.store.cron.latest(app, entry.name) is not None
            if not known and missed < live.created_at:
                continue  # the entry came after that time: nothing was missed
            log.info("cron.catching_up", app=app.name, job=entry.name, scheduled_at=missed)
            self.launch(job.Due(app, entry, missed, CronSource.CATCH_UP), live)

    def tick(self, now: float) -> float:
        """Launch every time due up to `now`; the next time any entry is due."""
        wake_at = now + self.longest_sleep
        for app, live, entry in self.entries():
            key = (app.pk, entry.name)
            # An entry first seen now came with its live release: its schedule starts when
            # that release went live (or when the scheduler started, if later).
            cursor = self._cursors.get(key, min(now, max(self._started_at, live.updated_at)))
            due = schedule.due_between(entry.schedule, entry.timezone, cursor, now)
            for moment in due[-MOST_PER_TICK:]:
                self.launch(job.Due(app, entry, moment, CronSource.SCHEDULE), live)
            self._cursors[key] = max(cursor, now)
            self._seen[key] = now
            upcoming = schedule.next_after(entry.schedule, entry.timezone, now)
            if upcoming is not None:
                wake_at = min(wake_at, upcoming)
        for key, seen in list(self._seen.items()):
            if now - seen > FORGET_AFTER:
                self._seen.pop(key)
                self._cursors.pop(key, None)
        return wake_at

    def run_now(self, app: App, name: str) -> CronRun:
        """`temps cron run`: the entry's run, now, recorded as manual (skipped as a scheduled
        time would be while the last run of the entry runs)."""
        live = self.ctx.store.live_release(app)
        if live is None or live.image is None:
            raise Conflict(f"app {app.name!r} has no live release to run a job from: deploy it")
        entry = next((e for e in live.config.cron if e.name == name), None)
        if entry is None:
            raise NotFound(f"app {app.name!r} has no cron entry named {name!r} in v{live.number}")
        run = self.launch(job.Due(app, entry, time.time(), CronSource.MANUAL), live)
        if run is None:  # the same instant asked twice
            raise Conflict(f"{name!r} was just asked to run; try again")
        return run

    def launch(self, due: job.Due, live: Release) -> CronRun | None:
        """Claim the time, and run it on a thread of its own; the claimed record."""
        claimed = job.claim(self.ctx, due, live)
        if claimed is None or claimed.state != CronState.RUNNING:
            return claimed

        backup = self.backup

        def work() -> None:
            try:
                if due.entry.name == BACKUP_JOB and backup is not None:
                    job.run_backup(self.ctx, due.app, claimed, backup)
                else:
                    job.run(self.ctx, due.app, due.entry, claimed, live)
            except (TempsError, OSError) as exc:  # recorded interrupted at the next start
                log.error("cron.run_failed", app=due.app.name, job=due.entry.name, error=str(exc))

        name = f"cron-{due.app.name}-{due.entry.name}"
        threading.Thread(target=work, name=name, daemon=True).start()
        return claimed

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            try:
                wake_at = self.tick(now)
            except (TempsError, OSError) as exc:
                log.error("cron.tick_failed", error=str(exc))
                wake_at = now + self.longest_sleep
            self._wake.wait(max(0.0, wake_at - time.time()))
            self._wake.clear()
