"""How records look in the API."""

from __future__ import annotations

import itertools
from typing import Any

from pipeline.settings import Settings
from pipeline.sqlite.models import App, Release, ReleaseEvent
from pipeline.sqlite.store import Store
from pipeline.states import ReleaseState


def release_view(store: Store, release: Release, *, events: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "number": release.number,
        "version": f"v{release.number}",
        "state": release.state,
        "source": release.source,
        "rollback_of": release.rollback_of,
        "commit": release.commit,
        "image": release.image,
        "strategy": release.strategy,
        "container": release.container,
        "host_port": release.host_port,
        "formation": release.formation,
        "slot": release.slot,
        "failure_reason": release.failure_reason,
        "failed_step": release.failed_step,
        "log_tail": release.log_tail,
        "config": release.config,
        "traffic": release.traffic,
        "created_at": release.created_at,
        "updated_at": release.updated_at,
    }
    if events:
        history = store.events(release.pk)
        view["events"] = [{"state": e.state, "was": e.was, "at": e.at} for e in history]
        view["timings"] = step_timings(history)
    return view


def step_timings(history: list[ReleaseEvent]) -> dict[str, float]:
    """Seconds spent in each state, from one state change to the next."""
    timings: dict[str, float] = {}
    for current, following in itertools.pairwise(history):
        timings[current.state] = round(following.at - current.at, 3)
    return timings


def app_view(store: Store, settings: Settings, app: App) -> dict[str, Any]:
    live = store.live_release(app)
    return _app(store, settings, app, live, store.domains.of(app))


def apps_view(store: Store, settings: Settings, apps: list[App]) -> list[dict[str, Any]]:
    """`app_view` of many apps, from three queries whatever their number."""
    live, domains = store.newest_per_app(ReleaseState.LIVE), store.domains.by_app()
    return [_app(store, settings, app, live.get(app.pk), domains.get(app.pk, [])) for app in apps]


def _app(
    store: Store, settings: Settings, app: App, live: Release | None, domains: list[str]
) -> dict[str, Any]:
    return {
        "name": app.name,
        "created_at": app.created_at,
        "url": settings.app_url(app.name),
        "domains": domains,
        "git_url": f"{settings.listen.url}/{app.name}.git",
        "live_release": release_view(store, live, events=False) if live else None,
    }
