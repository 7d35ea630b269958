"""The per-app deploy queue: one deploy per app at a time, apps in parallel.

A newer deploy queued behind a running one supersedes any older one still waiting: the
newest commit is what the pusher wants live. Nothing is locked on disk, so a crash leaves
no lock behind; releases caught mid-flight are found by reconciliation at start.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog

from pipeline import metrics
from pipeline.bake import bake
from pipeline.context import Context
from pipeline.deploy import run_deploy
from pipeline.errors import RuntimeUnavailable, TempsError
from pipeline.notify import send_in_background
from pipeline.prune import prune_images
from pipeline.sqlite.models import App, Release
from pipeline.states import TERMINAL
from pipeline.states import ReleaseState as S

log = structlog.get_logger()
RETIRE_POLL_SECONDS = 0.05


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
        source: str,
        commit: str,
        **fields: Any,
    ) -> Release:
        """Record a release and queue it; `fields` are Release columns (image, config, env...)."""
        if not self.ctx.runtime.ping():
            # Refuse before recording anything: no release is left half-done.
            raise RuntimeUnavailable("the Docker engine does not answer; nothing was deployed")
        if self._stopping.is_set():
            raise RuntimeUnavailable("temps is shutting down; nothing was deployed")
        fields.setdefault("env", app.env)
        # Numbering and queueing happen together, so the queue order is the release order.
        with self._admission:
            release = self.ctx.store.create_release(app, source=source, commit=commit, **fields)
            assert release.id is not None
            self.ctx.journal.start(release.id)
            with self._lock:
                lane = self._lanes.setdefault(app.name, _Lane())
                superseded = list(lane.waiting)
                lane.waiting.clear()
                lane.waiting.append(release.id)
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
        while time.monotonic() < deadline:
            with self._lock:
                for lane in self._lanes.values():
                    lane.arrived.set()  # ends bake windows at once
                if not any(lane.busy for lane in self._lanes.values()):
                    break
            time.sleep(0.05)
        else:
            return False
        # Old slots still draining get the rest of the time; one cut off is drained and
        # stopped at the next start, as an orphan.
        return self.ctx.retirements.wait(None, max(deadline - time.monotonic(), 0.0))

    def queue_depth(self) -> int:
        with self._lock:
            return sum(len(lane.waiting) + int(lane.busy) for lane in self._lanes.values())

    def _run_lane(self, app: str) -> None:
        while True:
            with self._lock:
                lane = self._lanes[app]
                if not lane.waiting or self._stopping.is_set():
                    lane.busy = False
                    return
                release_id = lane.waiting.popleft()
            try:
                self._deploy(app, release_id)
            except Exception:
                # Even recording a crash can fail (disk full, say): the lane goes on regardless.
                log.exception("deploy.lane_error", app=app, release_id=release_id)

    def _deploy(self, app: str, release_id: int) -> None:
        job = None
        try:
            job = run_deploy(self.ctx, release_id)
            metrics.deploys.inc(app, job.release.state)
        except Exception as exc:
            # A bug, not a deploy failure: record it and keep the lane alive for the next.
            log.exception("deploy.crashed", app=app, release_id=release_id)
            self._record_crash(release_id, exc)
        finally:
            self.ctx.journal.finish(release_id)  # the pusher has its answer by now
        self._notify(release_id)
        # What follows yields to a deploy already waiting (a rollback, say): a bake window
        # it would cut short at once is not started, and the next deploy prunes. Pruning
        # comes after the window, so removing images never competes with a rollback in it,
        # and after the old slots have drained and stopped, since Docker keeps an image a
        # container uses.
        if not self._waiting(app):
            try:
                bake(self.ctx, app, pause=lambda seconds: self._pause(app, seconds))
            except Exception:
                log.exception("bake.crashed", app=app)
        if job is not None and self._retired(app):
            try:
                prune_images(self.ctx, job.release)
            except Exception:
                log.exception("prune.crashed", app=app, release_id=release_id)

    def _notify(self, release_id: int) -> None:
        release = self.ctx.store.get_release(release_id)
        app = self.ctx.store.get_app_by_id(release.app_id)
        try:
            send_in_background(self.ctx.sealer, app, release)
        except TempsError as exc:
            log.warning("notify.failed", app=app.name, error=str(exc))

    def _retired(self, app: str) -> bool:
        """Wait for the app's old slots to drain and stop; False if a deploy comes first."""
        while self.ctx.retirements.busy(app):
            if self._pause(app, RETIRE_POLL_SECONDS):
                return False
        return not self._waiting(app)

    def _waiting(self, app: str) -> bool:
        with self._lock:
            return bool(self._lanes[app].waiting) or self._stopping.is_set()

    def _pause(self, app: str, seconds: float) -> bool:
        """Sleep up to `seconds`; True at once when a deploy is waiting or the daemon stops."""
        with self._lock:
            lane = self._lanes[app]
            if lane.waiting or self._stopping.is_set():
                return True
            lane.arrived.clear()
        lane.arrived.wait(seconds)
        return self._waiting(app)

    def _supersede(self, release_id: int, newer: Release) -> None:
        release = self.ctx.store.get_release(release_id)
        self.ctx.journal.write(release_id, f"-----> Superseded by v{newer.number}")
        self.ctx.journal.transition(release, S.SUPERSEDED)
        metrics.deploys.inc(self.ctx.store.get_app_by_id(release.app_id).name, "superseded")
        self.ctx.journal.finish(release_id)

    def _record_crash(self, release_id: int, exc: Exception) -> None:
        release = self.ctx.store.get_release(release_id)
        if S(release.state) in TERMINAL or release.state == S.LIVE:
            return
        reason = f"internal error: {type(exc).__name__}: {exc}"
        self.ctx.journal.write(release_id, f"-----> {reason}")
        self.ctx.journal.transition(
            release, S.FAILED, failure_reason=reason, failed_step=release.state
        )
