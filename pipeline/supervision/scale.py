"""Scaling the live release, without a new release: web containers are added booted, gated
and then routed, or taken out of Traefik first, then drained and stopped; background
processes are started, or stopped with SIGTERM and their stop_timeout.

Each change of the route is one confirmed switch, so a request is never sent to a container
that has not passed the gate, nor to one that is stopping. It runs under the app's slot lock:
a deploy (until its hand-over) or a flip back waits for it, and it waits for them.
"""

from __future__ import annotations

import structlog

from pipeline.context import Context, Deploy
from pipeline.errors import Conflict, TempsError
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.runtime import Instance, Slot
from pipeline.sqlite.models import App
from pipeline.steps import processes
from pipeline.steps.boot import free_name, start_gated
from pipeline.steps.build import built_of
from pipeline.steps.retire import Leaving, retire_in_background
from pipeline.traefik import publish

log = structlog.get_logger()


def scale(ctx: Context, app: App, wanted: dict[str, int]) -> Slot | None:
    """The live release's containers to the formation `wanted`; None when nothing is live."""
    with ctx.slot_locks.of(app.name):
        ctx.destroying.refuse(app.name)
        live = ctx.store.live_release(app)
        if live is None:
            return None
        slot = formation.slot_of(live)
        assert slot is not None
        run = Deploy.of(ctx, live)
        count = formation.web_count(wanted)
        stopped = ctx.store.get_app(app.name).stopped
        if WEB in stopped and count != len(slot.instances):
            raise Conflict(
                f"the web of {app.name} is stopped (temps ps stop); start it with "
                f"`temps ps start {app.name}` before scaling it"
            )
        if count > len(slot.instances):
            slot = grow(run, slot, count)
        elif count < len(slot.instances):
            slot = _shrink(run, slot, count)
        # A stopped process type keeps its new count for `temps ps start`; none starts now.
        background = formation.background(live.config, wanted)
        counts = {p: n for p, n in background.items() if p not in stopped}
        processes.stop_some(run, live, counts)
        processes.start(run, live, counts)
        ctx.store.set_details(live.pk, formation=wanted)
        return slot


def grow(run: Deploy, slot: Slot, count: int) -> Slot:
    """Up to `count` web containers: the new ones booted and gated, then routed with `slot`."""
    ctx, live = run.ctx, run.release
    built = built_of(live)
    check = built.config.healthcheck
    added: list[Instance] = []
    try:
        for index in range(len(slot.instances), count):
            name = free_name(run, live.number, first=index)
            run.say(f"-----> scale: starting {name}")
            added.append(start_gated(run, built, name))
        grown = Slot(slot.instances + tuple(added))
        cookie = built.config.skew.cookie
        publish.route(ctx.settings, run.app.name, grown.urls, run.label, check.path, cookie)
        for instance in added:
            ctx.runtime.keep_running(instance.container)
    except TempsError:
        for instance in added:  # never routed to: nothing to drain
            ctx.runtime.discard(instance.container)
        raise
    _record(run, grown)
    run.say(f"-----> scale: {run.label} runs {count} web containers")
    return grown


def _shrink(run: Deploy, slot: Slot, count: int) -> Slot:
    ctx = run.ctx
    kept, gone = Slot(slot.instances[:count]), slot.instances[count:]
    config = run.release.config
    path, cookie = config.healthcheck.path, config.skew.cookie
    publish.route(ctx.settings, run.app.name, kept.urls, run.label, path, cookie)
    _record(run, kept)
    run.say(f"-----> scale: {run.label} runs {count} web containers; draining the others")
    for instance in gone:
        leaving = Leaving.of(run.release, instance.container, (instance.port,), instance.address)
        retire_in_background(ctx, run.app.name, leaving, run.say)
    return kept


def _record(run: Deploy, slot: Slot) -> None:
    first = slot.first
    record = formation.slot_record(slot, run.current())
    run.ctx.store.set_details(run.id, host_port=first.port, slot=record)
    log.info("scale.changed", app=run.app.name, release=run.label, web=len(slot.instances))
