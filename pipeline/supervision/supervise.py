"""Live slots between deploys: a web container that crashed comes back by its restart policy
(Docker's back-off), perhaps at a new address on the bridge; this puts it back in the route
once it passes the gate again, and takes it out while it is down. On Swarm, a task whose
node was lost comes back on another node, at that node's address: the same story. A
container of the live release that nothing brings back (stopped or removed outside temps) is
started again by `pipeline.supervision.restore`, then gated and routed the same way. A start
is told by the container's endpoint on the bridge, new at each start: one started again at
the address it had is gated again all the same.

Once a second, and at once when the runtime reports a change (a Swarm node or service
event), one listing of the home's containers is compared with each live slot. An app whose
slot lock is held (a deploy, a scale, a flip back) is left to that, and an app being
destroyed to its destroy. The slot's record keeps every container it has; only the route
follows which of them serve.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter

import structlog

from pipeline.app.config import AppConfig, HealthCheck
from pipeline.context import Context
from pipeline.errors import TempsError
from pipeline.release import formation
from pipeline.release.states import ReleaseState
from pipeline.runtime import Container, Instance, Slot
from pipeline.sqlite.models import App, Release
from pipeline.steps.boot import gate_one
from pipeline.supervision.census import Census, count
from pipeline.supervision.periodic import Periodic
from pipeline.supervision.restore import Restorer
from pipeline.traefik import publish, routes
from pipeline.traefik.routes import RouteStamp

log = structlog.get_logger()
Listing = dict[str, Container]  # this home's containers by name


class Supervisor(Periodic):
    name = "supervise"

    def __init__(self, ctx: Context, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.ctx = ctx
        # A release's configuration does not change once built: parsed once per live
        # release, not once a second per app.
        self._configs: dict[int, AppConfig] = {}
        self.restorer = Restorer(ctx)
        # Each app's containers running against those wanted, as the last check found them.
        self.census: dict[str, Census] = {}
        # Each app's route as last found right, with the stamp its file had then: reading
        # and parsing 500 files a second was a third of this check's time.
        self._routed: dict[str, tuple[tuple[tuple[str, ...], str, str, bool], RouteStamp]] = {}
        # Web containers found started again since the last `take_restarts`, by app: the
        # restarts the apps' graphs draw (pipeline.series).
        self._restarted: Counter[str] = Counter()
        self._restarts_lock = threading.Lock()

    def take_restarts(self) -> dict[str, int]:
        with self._restarts_lock:
            taken, self._restarted = dict(self._restarted), Counter()
        return taken

    def check(self) -> None:
        containers = {c.name: c for c in self.ctx.runtime.containers()}
        # One read of every live release a second; one per app made a 500-app daemon spend a
        # third of a core here. What it reads may be stale by the time an app's lock is
        # held, so an app whose slot needs a change is read again under its lock, and so are
        # the containers.
        lives = self.ctx.store.newest_per_app(ReleaseState.LIVE)
        current = {live.pk for live in lives.values()}
        self._configs = {pk: config for pk, config in self._configs.items() if pk in current}
        census: dict[str, Census] = {}
        for app in self.ctx.store.list_apps():
            live = lives.get(app.pk)
            if live is None or app.destroying:
                continue
            lock = self.ctx.slot_locks.of(app.name)
            if lock.acquire(blocking=False):
                try:
                    # Asked again under the lock: a destroy marks the app before it takes it.
                    if app.name not in self.ctx.destroying:
                        containers = self._keep(app, live, containers)
                finally:
                    lock.release()
            census[app.name] = count(app, live, {n for n, c in containers.items() if c.running})
        self.census = census

    def _keep(self, app: App, live: Release, containers: dict[str, Container]) -> Listing:
        """Start again what is down, route what serves; the listing, taken again when
        something was started."""
        if self.restorer.needed(app, live, containers):
            # All read again under the lock: a deploy that held it may have just made another
            # release live, with containers the listing (taken before) has never seen, and
            # `temps ps stop` may have just run.
            app = self.ctx.store.get_app(app.name)
            fresh = self.ctx.store.live_release(app)
            containers = {c.name: c for c in self.ctx.runtime.containers()}
            if fresh is not None and self.restorer.restore(app, fresh, containers):
                containers = {c.name: c for c in self.ctx.runtime.containers()}
                self._follow(app, self.ctx.store.get_release(fresh.pk), containers, changes=True)
                return containers
        if not self._follow(app, live, containers, changes=False):
            fresh = self.ctx.store.live_release(app)
            if fresh is not None:
                containers = {c.name: c for c in self.ctx.runtime.containers()}
                self._follow(app, fresh, containers, changes=True)
        return containers

    def _config(self, release: Release) -> AppConfig:
        if release.pk not in self._configs:
            self._configs[release.pk] = release.config
        return self._configs[release.pk]

    def _follow(
        self, app: App, live: Release, containers: dict[str, Container], *, changes: bool
    ) -> bool:
        """Put the slot's serving containers in the route; False, without `changes`, when
        that would change something (a container moved, the route differs)."""
        slot = formation.slot_of(live)
        if slot is None:
            return True
        config = self._config(live)
        serving: list[Instance] = []
        moved = False
        for instance in slot.instances:
            seen = containers.get(instance.container)
            now = seen.instance(config.port) if seen is not None else None
            if now is None:
                continue  # down, or restarting: out of the route meanwhile
            if now != instance:
                if not changes:
                    return False
                # Started again since it was gated (at the same address or a new one); on
                # Swarm perhaps rescheduled to another node.
                moved = True
                with self._restarts_lock:
                    self._restarted[app.name] += 1
                if not self._passes(now, config.healthcheck, live.pk):
                    continue
                instance = now
            serving.append(instance)
        urls = tuple(instance.url for instance in serving)
        if moved:
            recorded = [_as_serving(i, serving) for i in slot.instances]
            self.ctx.store.set_details(
                live.pk, slot=formation.slot_record(Slot(tuple(recorded)), live)
            )
        label, path, cookie = f"v{live.number}", config.healthcheck.path, config.skew.cookie
        if urls and not self._is_routed(app.name, urls, label, path, cookie):
            if not changes:
                return False
            publish.route(self.ctx.settings, app.name, urls, label, path, cookie)
            log.info("supervise.rerouted", app=app.name, release=label, urls=list(urls))
        return True

    def _is_routed(
        self, app: str, urls: tuple[str, ...], label: str, path: str, cookie: bool
    ) -> bool:
        """`publish.is_routed`, remembered while the route's file stays as it was."""
        wanted, stamp = (urls, label, path, cookie), routes.route_stamp(self.ctx.settings, app)
        if stamp is not None and self._routed.get(app) == (wanted, stamp):
            return True
        if not publish.is_routed(self.ctx.settings, app, urls, label, path, cookie=cookie):
            return False
        if stamp is not None:
            self._routed[app] = (wanted, stamp)
        return True

    def _passes(self, instance: Instance, check: HealthCheck, release_id: int) -> bool:
        say = functools.partial(self.ctx.journal.write, release_id)
        say(f"-----> {instance.container} restarted at {instance.url}: gating it")
        try:
            gate_one(self.ctx.runtime, instance, check, say)
        except TempsError as exc:
            log.warning("supervise.gate_failed", container=instance.container, error=str(exc))
            return False
        return True


def _as_serving(instance: Instance, serving: list[Instance]) -> Instance:
    for current in serving:
        if current.container == instance.container:
            return current
    return instance
