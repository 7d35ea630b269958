"""The per-app deploy queue: one deploy per app at a time, apps in parallel.

A newer deploy queued behind a running one supersedes any older one still waiting: the
newest commit is what the pusher wants live. Nothing is locked on disk, so a crash leaves
no lock behind; releases caught mid-flight are found by reconciliation at start. An app
being destroyed takes no deploy: `cancel` fails those waiting, and the running one stops
before its next step (`Context.destroying`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Unpack

import structlog

from pipeline import memory, metrics
from pipeline.context import Context
from pipeline.deploy.lifecycle import deploy
from pipeline.errors import Conflict, RuntimeUnavailable
from pipeline.polling import poll_until
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.release.states import Failure
from pipeline.release.states import ReleaseState as S
from pipeline.release.transition import transition
from pipeline.sqlite.models import App, Release, ReleaseSource
from pipeline.sqlite.store import ReleaseFields
from pipeline.statuses.report import report

log = structlog.get_logger()
RETIRE_POLL_SECONDS = 0.05
SHUTDOWN_POLL_SECONDS = 0.05


@dataclass
class _Lane:
    waiting: deque[int] = field(default_factory=deque)
    busy: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)


class Deployer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lanes: dict[str, _Lane] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._admission = threading.Lock()

    def submit(
        self,
        app: App,
        *,
        source: ReleaseSource,
        commit: str,
        **fields: Unpack[ReleaseFields],
    ) -> Release:
        """Record a release and queue it; `fields` are Release columns (image, config, env...)."""
        if not self.ctx.runtime.ping():
            # Refuse before recording anything: no release is left half-done.
            raise RuntimeUnavailable("the Docker engine does not answer; nothing was deployed")
        if self._stopping.is_set():
            raise RuntimeUnavailable("temps is shutting down; nothing was deployed")
        if WEB in app.stopped:
            # A release nobody asked to serve should not start serving (`pipeline.supervision
            # .stopping`); a stopped worker, though, stays stopped across deploys.
            raise Conflict(
                f"{app.name} is stopped (temps ps stop); start it with "
                f"`temps ps start {app.name}` before deploying; nothing was deployed"
            )
        fields.setdefault("env", app.env)
        fields.setdefault("formation", formation.checked(app.formation, {}))
        # Numbering and queueing happen together, so the queue order is the release order.
        with self._admission:
            # Under the admission lock: a destroy marks the app before `cancel` takes it.
            self.ctx.destroying.refuse(app.name)
            release = self.ctx.store.create_release(app, source=source, commit=commit, **fields)
            self.ctx.journal.start(release.pk)
            with self._lock:
                lane = self._lanes.setdefault(app.name, _Lane())
                superseded = list(lane.waiting)
                lane.waiting.clear()
                lane.waiting.append(release.pk)
                lane.arrived.set()
                start = not lane.busy
                lane.busy = True
        for older in superseded:
            self._supersede(older, release)
        if start:
            threading.Thread(
                target=self._run_lane, args=(app.name,), name=f"deploy-{app.name}", daemon=True
            ).start()
        return release

    def shutdown(self, timeout: float) -> bool:
        """Take no new deploys and wait up to `timeout` for the running ones to end.

        What is still running or queued afterwards is marked interrupted at the next start.
        Returns True when every lane finished in time.
        """
        self._stopping.set()
        deadline = time.monotonic() + timeout

        def finished() -> bool:
            with self._lock:
                for lane in self._lanes.values():
                    lane.arrived.set()  # ends bake windows at once
                return not any(lane.busy for lane in self._lanes.values())

        if not poll_until(finished, timeout, SHUTDOWN_POLL_SECONDS):
            return False
        # Old slots still draining get the rest of the time; one cut off, or one that only
        # holds long-lived connections (they outlive the daemon: Traefik and the container
        # keep running), is drained and stopped at the next start, as an orphan.
        left = max(deadline - time.monotonic(), 0.0)
        return self.ctx.retirements.wait(None, left, holding_too=False)

    def cancel(self, app: str) -> None:
        """The app is being destroyed: its waiting deploys fail at once, and its bake window
        or canary, if one runs, ends (the running deploy stops before its next step)."""
        with self._admission, self._lock:
            lane = self._lanes.get(app)
            waiting = list(lane.waiting) if lane is not None else []
            if lane is not None:
                lane.waiting.clear()
                lane.arrived.set()
        for release_id in waiting:
            release = self.ctx.store.get_release(release_id)
            self.ctx.journal.write(release_id, f"-----> Cancelled: {app} is being destroyed")
            reason = f"cancelled: app {app!r} is being destroyed"
            failure = Failure(reason, S.QUEUED)
            failed = transition(self.ctx.store, app, release, S.FAILED, failure=failure)
            metrics.deploys.inc(app, S.FAILED)
            self.ctx.journal.finish(release_id)
            report(self.ctx, self.ctx.store.get_app_by_id(release.app_id), failed)

    def idle(self, app: str) -> bool:
        """No deploy of the app runs or waits."""
        with self._lock:
            lane = self._lanes.get(app)
            return lane is None or not (lane.busy or lane.waiting)

    def queue_depth(self) -> int:
        with self._lock:
            return sum(len(lane.waiting) + int(lane.busy) for lane in self._lanes.values())

    def _run_lane(self, app: str) -> None:
        lane = _LaneView(self, app)
        while True:
            with self._lock:
                state = self._lanes[app]
                if not state.waiting or self._stopping.is_set():
                    state.busy = False
                    return
                release_id = state.waiting.popleft()
            try:
                deploy(self.ctx, lane, release_id)
            except Exception:
                # Even recording a crash can fail (disk full, say): the lane goes on regardless.
                log.exception("deploy.lane_error", app=app, release_id=release_id)
            memory.give_back()

    def _waiting(self, app: str) -> bool:
        """A newer deploy waits, the daemon is stopping, or the app is being destroyed."""
        with self._lock:
            waiting = bool(self._lanes[app].waiting) or self._stopping.is_set()
        return waiting or app in self.ctx.destroying

    def _pause(self, app: str, seconds: float) -> bool:
        with self._lock:
            lane = self._lanes[app]
            if lane.waiting or self._stopping.is_set() or app in self.ctx.destroying:
                return True
            lane.arrived.clear()
        lane.arrived.wait(seconds)
        return self._waiting(app)

    def _supersede(self, release_id: int, newer: Release) -> None:
        release = self.ctx.store.get_release(release_id)
        self.ctx.journal.write(release_id, f"-----> Superseded by v{newer.number}")
        app = self.ctx.store.get_app_by_id(release.app_id)
        superseded = transition(self.ctx.store, app.name, release, S.SUPERSEDED)
        metrics.deploys.inc(app.name, "superseded")
        self.ctx.journal.finish(release_id)
        report(self.ctx, app, superseded)


@dataclass(frozen=True)
class _LaneView:
    """One app's lane, as `lifecycle.deploy` sees it."""

    deployer: Deployer
    app: str

    def idle(self) -> bool:
        return not self.deployer._waiting(self.app)

    def pause(self, seconds: float) -> bool:
        return self.deployer._pause(self.app, seconds)

    def retired(self) -> bool:
        while self.deployer.ctx.retirements.busy(self.app):
            if self.pause(RETIRE_POLL_SECONDS):
                return False
        return self.idle()
