"""What a deploy step needs, passed explicitly: the daemon's `Context`, and the `Deploy` of
one release."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Unpack

import structlog

from pipeline.app.sealing import Sealer
from pipeline.drain.wait import Watch
from pipeline.errors import BeingDestroyed, Cancelled
from pipeline.release.journal import Journal
from pipeline.release.states import ReleaseState
from pipeline.release.transition import Change, transition
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Release
from pipeline.sqlite.store import Store
from pipeline.statuses.sender import StatusSender

log = structlog.get_logger()


class SlotLocks:
    """One lock per app, held by whatever changes which containers serve it: a deploy until
    its hand-over, a flip back, a scale. A bake window holds none, so scaling waits for no
    window."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def of(self, app: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(app, threading.Lock())


class CanaryCalls:
    """Decisions taken by hand on an app's running canary (`temps canary promote|abort`),
    waiting for the canary to read them."""

    def __init__(self) -> None:
        self._calls: dict[str, str] = {}
        self._guard = threading.Lock()

    def call(self, app: str, decision: str) -> None:
        with self._guard:
            self._calls[app] = decision

    def take(self, app: str) -> str | None:
        with self._guard:
            return self._calls.pop(app, None)


class Destroying:
    """The apps being destroyed (`pipeline.deploy.destroy`), as the records mark them: kept
    here too, since every thread that could start something for an app asks, some of them
    every second. Nothing new starts for such an app: a deploy stops before its next step,
    the supervisor and scaling leave it, and every change of it is refused."""

    def __init__(self) -> None:
        self._apps: set[str] = set()
        self._guard = threading.Lock()

    def add(self, app: str) -> None:
        with self._guard:
            self._apps.add(app)

    def discard(self, app: str) -> None:
        with self._guard:
            self._apps.discard(app)

    def __contains__(self, app: object) -> bool:
        with self._guard:
            return app in self._apps

    def refuse(self, app: str) -> None:
        """Raise BeingDestroyed when the app is being destroyed."""
        if app in self:
            raise BeingDestroyed(app)


def _oldest(watches: list[Watch], release: str) -> float:
    return min(w.since for w in watches if w.release == release)


class Retirements:
    """The slots draining and stopping in the background, by app, each with its watch (what
    `temps ps` lists as leaving). At most MAX_LEAVING releases of an app hold connections at
    once: when another one leaves, the oldest hands its connections over at once."""

    MAX_LEAVING = 3

    def __init__(self) -> None:
        self._running: dict[str, dict[threading.Thread, Watch]] = {}
        self._changed = threading.Condition()

    def start(self, app: str, watch: Watch, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("deploy.retire_failed", app=app, container=watch.container)
            finally:
                with self._changed:
                    self._running[app].pop(thread, None)
                    self._changed.notify_all()

        thread = threading.Thread(target=run, name=f"retire-{watch.container}", daemon=True)
        with self._changed:
            self._running.setdefault(app, {})[thread] = watch
            self._hurry_the_oldest(app)
        thread.start()

    def _hurry_the_oldest(self, app: str) -> None:
        serving = [w for w in self._running[app].values() if w.serves]
        releases = sorted({w.release for w in serving}, key=lambda r: _oldest(serving, r))
        for release in releases[: max(len(releases) - self.MAX_LEAVING, 0)]:
            for watch in serving:
                if watch.release == release and not watch.early.is_set():
                    log.info("deploy.handover_early", app=app, release=release)
                    watch.early.set()

    def hurry(self, app: str) -> None:
        """Every leaving slot of the app hands its connections over now."""
        with self._changed:
            for watch in self._running.get(app, {}).values():
                watch.early.set()

    def leaving(self, app: str) -> list[Watch]:
        """The app's web containers still draining or handing over, oldest first."""
        with self._changed:
            found = [w for w in self._running.get(app, {}).values() if w.serves]
        return sorted(found, key=lambda w: w.since)

    def busy(self, app: str) -> bool:
        with self._changed:
            return bool(self._running.get(app))

    def wait(self, app: str | None, timeout: float, holding_too: bool = True) -> bool:
        """Wait until the app's retirements (every app's, for None) are over; False on timeout.
        Without `holding_too`, a slot that only holds long-lived connections (`Watch.holding`)
        is not waited for: a daemon that stops leaves it to its next start."""
        deadline = time.monotonic() + timeout

        def over() -> bool:
            running = [self._running.get(app, {})] if app else list(self._running.values())
            return not any(
                holding_too or not watch.holding for found in running for watch in found.values()
            )

        with self._changed:
            while not over():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 1.0))  # a watch may turn to holding
            return True


@dataclass
class Context:
    settings: Settings
    store: Store
    journal: Journal
    runtime: Runtime
    sealer: Sealer
    build_slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(2))
    retirements: Retirements = field(default_factory=Retirements)
    slot_locks: SlotLocks = field(default_factory=SlotLocks)
    canary_calls: CanaryCalls = field(default_factory=CanaryCalls)
    destroying: Destroying = field(default_factory=Destroying)
    statuses: StatusSender = field(default_factory=StatusSender)  # commit statuses, in order


# The states a deploy of an app being destroyed does not enter: it stops before building,
# releasing, booting or gating (`Cancelled`). From the canary on, its route has moved, and
# the deploy finishes what it started before the destroy takes the app out of Traefik.
CANCELLED_BEFORE = frozenset(
    {
        ReleaseState.BUILDING,
        ReleaseState.RELEASING,
        ReleaseState.BOOTING,
        ReleaseState.HEALTH_CHECKING,
    }
)


@dataclass(frozen=True)
class Deploy:
    """One deploy of one release. `release` is the record as it was queued (number, commit,
    source, env, rollback target); what the steps learn comes back in their own records,
    and `current()` reads the record as it is now."""

    ctx: Context
    app: App
    release: Release
    log: structlog.stdlib.BoundLogger
    # The release as this deploy last moved it: its state is the one `move` starts from, with
    # no read before each step (only this deploy moves its release; the store still refuses
    # a move from a stale state).
    _moved: list[Release] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def of(cls, ctx: Context, release: Release) -> Deploy:
        app = ctx.store.get_app_by_id(release.app_id)
        return cls(
            ctx,
            app,
            release,
            structlog.get_logger().bind(app=app.name, release=f"v{release.number}"),
        )

    @property
    def id(self) -> int:
        return self.release.pk

    @property
    def label(self) -> str:
        return f"v{self.release.number}"

    def current(self) -> Release:
        return self.ctx.store.get_release(self.id)

    def move(self, state: ReleaseState, **change: Unpack[Change]) -> Release:
        """This release to `state`, through the one transition function; Cancelled instead
        when the app is being destroyed and `state` starts a step the destroy cancels."""
        if state in CANCELLED_BEFORE and self.app.name in self.ctx.destroying:
            raise Cancelled(self.app.name)
        was = self._moved[-1] if self._moved else self.release
        moved = transition(self.ctx.store, self.app.name, was, state, **change)
        self._moved[:] = [moved]
        return moved

    def move_other(self, release: Release, state: ReleaseState) -> Release:
        """Another release of this app (the one it replaces, the standby) to `state`."""
        return transition(self.ctx.store, self.app.name, release, state)

    def say(self, text: str) -> None:
        self.ctx.journal.write(self.id, text)
