"""Desired state: the live release's formation is what temps keeps running.

A web or worker container of the live release that is not running, for whatever reason
(`docker stop`, `docker kill`, `docker rm -f`, an engine that did not restart it), is
started again from the release's image under its own name; a web one is then gated before
the supervisor routes it again. Only `temps ps stop` stops a process type on purpose.

What the runtime brings back by itself is left to it (Docker's restart back-off, a Swarm
task placed again). A container that will not stay up is tried again with a back-off that
doubles from `first_wait` to `longest_wait`; after `calm` seconds without a try it starts
over. Each try is a line in the live release's log, a structlog event and a notification.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from pipeline.context import Context, Deploy
from pipeline.errors import TempsError
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.runtime import Container
from pipeline.sqlite.models import App, Release
from pipeline.steps import processes
from pipeline.steps.build import built_of, spec_of
from pipeline.steps.notify import send_restored
from pipeline.supervision.census import expected

log = structlog.get_logger()


@dataclass
class _Tries:
    count: int = 0
    last: float = 0.0


class Backoff:
    """When to try again: at once the first time, then after `first_wait` seconds, doubling
    up to `longest_wait`; after `calm` seconds without a try, at once again."""

    def __init__(
        self, first_wait: float = 1.0, longest_wait: float = 60.0, calm: float = 300.0
    ) -> None:
        self.first_wait, self.longest_wait, self.calm = first_wait, longest_wait, calm
        self._tries: dict[str, _Tries] = {}

    def due(self, key: str, now: float) -> bool:
        tries = self._tries.get(key)
        if tries is None or now - tries.last >= self.calm:
            return True
        wait = min(self.first_wait * 2.0 ** (tries.count - 1), self.longest_wait)
        return now - tries.last >= wait

    def tried(self, key: str, now: float) -> int:
        """Count a try of `key` at `now`; its number in the current run of tries."""
        tries = self._tries.setdefault(key, _Tries())
        if now - tries.last >= self.calm:
            tries.count = 0
        tries.count += 1
        tries.last = now
        return tries.count


class Restorer:
    def __init__(self, ctx: Context, backoff: Backoff | None = None) -> None:
        self.ctx = ctx
        self.backoff = backoff or Backoff()

    def needed(self, app: App, live: Release, containers: dict[str, Container]) -> bool:
        """Whether `restore` has something to start now (read without the app's lock: the
        caller reads the app and its live release again under it before restoring)."""
        return bool(self._down(app, live, containers) or self._short_workers(app, live))

    def restore(self, app: App, live: Release, containers: dict[str, Container]) -> bool:
        """Start again what the live formation should run and does not; True when it tried."""
        down, short = self._down(app, live, containers), self._short_workers(app, live)
        if not down and not short:
            return False
        run = Deploy.of(self.ctx, live)
        for process, name in down:
            self._start_again(run, process, name, _why(self.ctx, name, containers.get(name)))
        if short:
            self._start_more(run, short)
        return True

    def _down(
        self, app: App, live: Release, containers: dict[str, Container]
    ) -> list[tuple[str, str]]:
        """(process type, container) of each expected container neither running nor being
        brought back by the runtime, and due for a try."""
        down = []
        for process, names in expected(app, live).items():
            for name in names:
                seen = containers.get(name)
                if seen is not None and (seen.running or seen.waiting):
                    continue
                if self._due(name):
                    down.append((process, name))
        return down

    def _due(self, key: str) -> bool:
        return self.backoff.due(key, time.monotonic())

    def _tried(self, key: str) -> int:
        return self.backoff.tried(key, time.monotonic())

    def _start_again(self, run: Deploy, process: str, name: str, why: str) -> None:
        attempt = self._tried(name)
        ctx, live = run.ctx, run.release
        built = built_of(live)
        spec = spec_of(run, built, name, process, live)
        told = run.log.bind(container=name, attempt=attempt)  # app and release bound already
        try:
            if process == WEB:
                ctx.runtime.boot(spec, built.config.port)
                ctx.runtime.keep_running(name)  # a crash from now on is Docker's to restart
            else:
                ctx.runtime.start(spec)
        except TempsError as error:
            told.warning("supervise.restore_failed", error=str(error))
            run.say(f"-----> {name} {why}; starting it again failed (try {attempt}): {error}")
            return
        gated = ", gating it before it is routed" if process == WEB else ""
        run.say(f"-----> {name} {why}: started again (try {attempt}){gated}")
        told.warning("supervise.restored", process=process, why=why)
        send_restored(ctx.sealer, run.app, live, name, process, why)

    def _short_workers(self, app: App, live: Release) -> dict[str, int]:
        """Background process types the live release records fewer containers of than its
        formation wants (some never started: the daemon stopped mid-deploy)."""
        recorded = formation.workers_of(live)
        wanted = formation.background(live.config, live.formation)
        return {
            process: number
            for process, number in wanted.items()
            if process not in app.stopped
            and len(recorded.get(process, [])) < number
            and self._due(f"{live.pk}:{process}")
        }

    def _start_more(self, run: Deploy, counts: dict[str, int]) -> None:
        for process in counts:
            self._tried(f"{run.id}:{process}")
        try:
            processes.start(run, run.release, counts)
        except TempsError as error:
            run.log.warning("supervise.workers_start_failed", error=str(error))
            run.say(f"-----> the workers of {run.label} did not all start: {error}")
            return
        run.log.warning("supervise.workers_started", to=counts)


def _why(ctx: Context, name: str, seen: Container | None) -> str:
    if seen is None:
        return "was removed outside temps"
    state = ctx.runtime.state(name)
    if state.status == "missing":
        return "was removed outside temps"
    return f"was {state.status} (exit code {state.exit_code})"
