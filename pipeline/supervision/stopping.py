"""Stopping an app, or some of its process types, on purpose (`temps ps stop`), and starting
them again (`temps ps start`).

What is stopped is recorded with the app, so neither the supervisor nor a restarted daemon
brings it back. A stopped web is taken out of Traefik first (its hosts then answer 503 with
`Retry-After`, not 502), then drained and stopped; its containers keep their names in the
live release's record, and `start` boots, gates and routes them again. Stopped workers get
SIGTERM and their stop_timeout, and start again as the formation wants them.

A deploy of an app whose web is stopped is refused until it is started: a release nobody
asked to serve should not start serving. A stopped worker stays stopped across deploys.
"""

from __future__ import annotations

import structlog

from pipeline.context import Context, Deploy
from pipeline.errors import Conflict, InvalidInput, SwitchFailed
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.runtime import Slot
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Release
from pipeline.steps import processes
from pipeline.steps.retire import DELIBERATE_DRAIN_SECONDS, Leaving, drain_and_stop
from pipeline.supervision.scale import grow
from pipeline.traefik import publish

log = structlog.get_logger()
RETRY_AFTER_SECONDS = 30  # what a stopped app's 503 tells clients


def stop(ctx: Context, name: str, chosen: list[str]) -> App:
    """Stop the `chosen` process types of the app's live release (none chosen: all)."""
    with ctx.slot_locks.of(name):
        app, live = _app_and_live(ctx, name)
        targets = _checked(live, chosen) - set(app.stopped)
        if not targets:
            return app
        app = ctx.store.update_app(name, stopped=sorted(set(app.stopped) | targets))
        run = Deploy.of(ctx, live)
        run.say(f"-----> ps stop: stopping {', '.join(sorted(targets))}")
        if WEB in targets:
            try:
                unroute(ctx.settings, name, run.label)
            except SwitchFailed:
                app = ctx.store.update_app(name, stopped=sorted(set(app.stopped) - {WEB}))
                raise
            for leaving in _web_of(live):  # asked to stop: not after a WebSocket's hours
                drain_and_stop(ctx, leaving.within(DELIBERATE_DRAIN_SECONDS), run.say)
        workers = {process: 0 for process in targets if process != WEB}
        if workers:
            processes.stop_some(run, live, workers)
        log.info("ps.stopped", app=name, release=run.label, processes=sorted(targets))
        return app


def start(ctx: Context, name: str, chosen: list[str]) -> App:
    """Start the `chosen` stopped process types again (none chosen: every stopped one)."""
    with ctx.slot_locks.of(name):
        app, live = _app_and_live(ctx, name)
        targets = (_checked(live, chosen) if chosen else set(app.stopped)) & set(app.stopped)
        if not targets:
            return app
        run = Deploy.of(ctx, live)
        run.say(f"-----> ps start: starting {', '.join(sorted(targets))}")
        if WEB in targets:
            grow(run, Slot(()), formation.web_count(live.formation))
        app = ctx.store.update_app(name, stopped=sorted(set(app.stopped) - targets))
        workers = formation.background(live.config, live.formation)
        processes.start(run, live, {p: n for p, n in workers.items() if p in targets})
        log.info("ps.started", app=name, release=run.label, processes=sorted(targets))
        return app


def unroute(settings: Settings, app: str, label: str) -> None:
    """The app's hosts answer 503 with `Retry-After`, confirmed through Traefik."""
    if not publish.unroute(settings, app, label, RETRY_AFTER_SECONDS):
        raise SwitchFailed(
            f"Traefik did not confirm that {app} is out of the route within "
            f"{settings.switch_confirm_timeout:g}s; nothing was stopped"
        )


def _app_and_live(ctx: Context, name: str) -> tuple[App, Release]:
    ctx.destroying.refuse(name)
    app = ctx.store.get_app(name)
    live = ctx.store.live_release(app)
    if live is None:
        raise Conflict(f"app {name!r} has no live release: nothing runs to stop or start")
    return app, live


def _checked(live: Release, chosen: list[str]) -> set[str]:
    known = {WEB, *formation.background(live.config, live.formation)}
    unknown = sorted(set(chosen) - known)
    if unknown:
        raise InvalidInput(
            f"unknown process type {unknown[0]!r}: the live release runs {', '.join(sorted(known))}"
        )
    return set(chosen) if chosen else known


def _web_of(live: Release) -> list[Leaving]:
    slot = formation.slot_of(live)
    found = (Leaving.of(live, i.container) for i in slot.instances) if slot else ()
    return [leaving for leaving in found if leaving is not None]
