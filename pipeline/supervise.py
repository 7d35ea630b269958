"""Live slots between deploys: a web container that crashed comes back by its restart policy
(Docker's back-off), on a new host port; this puts it back in the route once it passes the
gate again, and takes it out while it is down. On Swarm, a task whose node was lost comes
back on another node, at that node's address: the same story.

Once a second, and at once when the runtime reports a change (a Swarm node or service event),
one listing of the home's containers is compared with each live slot. An app
whose slot lock is held (a deploy, a scale, a flip back) is left to that. The slot's record
keeps every container it has; only the route follows which of them serve.
"""

from __future__ import annotations

import functools

import structlog

from pipeline import formation
from pipeline.appconfig import HealthCheck
from pipeline.build import config_of
from pipeline.context import Context
from pipeline.errors import TempsError
from pipeline.health import wait_until_healthy
from pipeline.periodic import Periodic
from pipeline.runtime import Container, Instance, Slot
from pipeline.sqlite.models import App
from pipeline.traefik import publish

log = structlog.get_logger()


class Supervisor(Periodic):
    name = "supervise"

    def __init__(self, ctx: Context, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.ctx = ctx

    def check(self) -> None:
        containers = {c.name: c for c in self.ctx.runtime.containers()}
        for app in self.ctx.store.list_apps():
            lock = self.ctx.slot_locks.of(app.name)
            if lock.acquire(blocking=False):
                try:
                    self._follow(app, containers)
                finally:
                    lock.release()

    def _follow(self, app: App, containers: dict[str, Container]) -> None:
        live = self.ctx.store.live_release(app)
        slot = formation.slot_of(live) if live is not None else None
        if live is None or slot is None:
            return
        config = config_of(live)
        serving: list[Instance] = []
        moved = False
        for instance in slot.instances:
            seen = containers.get(instance.container)
            port = seen.ports.get(config.port) if seen is not None and seen.running else None
            if seen is None or port is None:
                continue  # down, or restarting: out of the route meanwhile
            if (seen.address, port) != (instance.address, instance.host_port):
                moved = True  # restarted; on Swarm perhaps rescheduled to another node
                back = Instance(instance.container, port, seen.address)
                if not self._passes(back, config.healthcheck, live.pk):
                    continue
                instance = back
            serving.append(instance)
        urls = tuple(instance.url for instance in serving)
        if moved:
            recorded = [_with_port(i, serving) for i in slot.instances]
            self.ctx.store.set_details(
                live.pk, slot=formation.slot_record(Slot(tuple(recorded)), live)
            )
        label, path = f"v{live.number}", config.healthcheck.path
        if urls and not publish.is_routed(self.ctx.settings, app.name, urls, label, path):
            publish.route(self.ctx.settings, app.name, urls, label, path)
            log.info("supervise.rerouted", app=app.name, release=label, urls=list(urls))

    def _passes(self, instance: Instance, check: HealthCheck, release_id: int) -> bool:
        state = functools.partial(self.ctx.runtime.state, instance.container)
        say = functools.partial(self.ctx.journal.write, release_id)
        say(f"-----> {instance.container} restarted at {instance.url}: gating it")
        try:
            wait_until_healthy(instance.url, check, state, say)
        except TempsError as exc:
            log.warning("supervise.gate_failed", container=instance.container, error=str(exc))
            return False
        return True


def _with_port(instance: Instance, serving: list[Instance]) -> Instance:
    for current in serving:
        if current.container == instance.container:
            return current
    return instance
