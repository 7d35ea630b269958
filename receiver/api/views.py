"""How records look in the API."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.release.states import ReleaseState
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Release, ReleaseEvent
from pipeline.sqlite.store import Store


class View(BaseModel):
    """An answer of the API. Built from records (`from_attributes`) or their columns; every
    field is always in the answer, null when it has no value."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


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
        "slot": _document(release.slot),
        "failure_reason": release.failure_reason,
        "failed_step": release.failed_step,
        "log_tail": release.log_tail,
        "config": release.config.to_dict(),
        "traffic": _document(release.traffic),
        "created_at": release.created_at,
        "updated_at": release.updated_at,
    }
    if events:
        history = store.events(release.pk)
        view["events"] = [{"state": e.state, "was": e.was, "at": e.at} for e in history]
        view["timings"] = step_timings(history)
    return view


def _document(record: BaseModel | None) -> Any:
    return None if record is None else record.model_dump(mode="json", exclude_none=True)


def step_timings(history: list[ReleaseEvent]) -> dict[str, float]:
    """Seconds spent in each state, from one state change to the next."""
    timings: dict[str, float] = {}
    for current, following in itertools.pairwise(history):
        timings[current.state] = round(following.at - current.at, 3)
    return timings


def app_view(store: Store, settings: Settings, app: App) -> dict[str, Any]:
    live = store.live_release(app)
    view = release_view(store, live, events=False) if live else None
    return _app(settings, app, view, store.domains.of(app))


def apps_view(store: Store, settings: Settings, apps: list[App]) -> list[dict[str, Any]]:
    """`app_view` of many apps, each live release in brief (`brief_view`), from three queries
    whatever their number."""
    live, domains = store.newest_briefs(ReleaseState.LIVE), store.domains.by_app()
    return [
        _app(settings, app, brief_view(live.get(app.pk)), domains.get(app.pk, [])) for app in apps
    ]


def brief_view(brief: dict[str, Any] | None) -> dict[str, Any] | None:
    """A release in brief (`Store.newest_briefs`): what it is and where it runs, without its
    configuration, traffic report and containers."""
    return {**brief, "version": f"v{brief['number']}"} if brief else None


def _app(
    settings: Settings, app: App, live: dict[str, Any] | None, domains: list[str]
) -> dict[str, Any]:
    return {
        "name": app.name,
        "created_at": app.created_at,
        "url": settings.app_url(app.name),
        "domains": domains,
        "git_url": f"{settings.listen.url}/{app.name}.git",
        "live_release": live,
    }
