"""How records look in the API: the models of its answers, and the functions that build them.

The dashboard renders the same models (receiver.dashboard), so a page shows what the API
answers. A release's `slot`, `traffic` and `config` are the records it is stored with
(pipeline.release.records, pipeline.app.config), not copies of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue, computed_field

from pipeline.app.config import AppConfig
from pipeline.deploy.destroy import Destroyed
from pipeline.release.records import SlotRecord, TrafficRecord
from pipeline.release.states import ReleaseState
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Counts, Release, ReleaseEvent, ReleaseSource
from pipeline.sqlite.store import Store
from pipeline.supervision.census import Census

Censuses = Mapping[str, Census]  # app -> its census


class View(BaseModel):
    """An answer of the API. Built from records (`from_attributes`) or their columns; every
    field is always in the answer, null when it has no value."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class ReleaseBrief(View):
    """A release in brief (`Store.newest_briefs`): what it is and where it runs, without its
    configuration, traffic record and containers."""

    number: int
    state: ReleaseState
    source: ReleaseSource
    rollback_of: int | None
    commit: str  # "" for an image deploy
    image: str | None
    pulled: str | None  # an image deploy's: what it pulled, with the registry's digest
    strategy: str
    container: str | None  # its first web container
    host_port: int | None
    failure_reason: str | None
    failed_step: str | None
    created_at: float
    updated_at: float

    @computed_field  # type: ignore[prop-decorator]  # mypy takes no decorator over a property
    @property
    def version(self) -> str:
        return f"v{self.number}"


class ReleaseView(ReleaseBrief):
    """A release with what it ran: its formation, containers, configuration and traffic."""

    formation: Counts | None  # None: recorded before formations, one web container
    slot: SlotRecord | None
    log_tail: str | None
    config: AppConfig
    traffic: TrafficRecord | None


class EventView(View):
    state: ReleaseState
    was: ReleaseState | None
    at: float


class ReleaseDetail(ReleaseView):
    """A release with its state changes and the seconds it spent in each state."""

    events: list[EventView]
    timings: dict[str, float]


class ReleaseWithLog(ReleaseDetail):
    log: list[str]


class AppBrief(View):
    """An app as a list shows it, its live release in brief."""

    name: str
    created_at: float
    url: str
    domains: list[str]
    git_url: str
    live_release: ReleaseBrief | None
    # The live formation's containers running against those wanted, by process type, as the
    # supervisor last counted them (null until it has, or with nothing live).
    processes: Census | None
    stopped: list[str]  # process types stopped on purpose (`temps ps stop`)
    destroying: bool  # being destroyed: every change of it is refused until it is gone
    maintenance_since: float | None  # in maintenance since then (`temps maintenance`)


class KeptView(View):
    """A replaced release kept for skew protection: requests that name it reach it until
    `until` (seconds since the epoch)."""

    release: str  # "v3"
    until: float
    containers: list[str]


class AppView(AppBrief):
    live_release: ReleaseView | None
    kept_releases: list[KeptView] = []  # oldest first


class AppWithSettings(AppView):
    settings: dict[str, JsonValue]  # the temps.toml keys set through the API


A = TypeVar("A", bound=AppBrief)


def release_view(store: Store, release: Release) -> ReleaseDetail:
    return ReleaseDetail.model_validate(_with_history(store, release))


def release_with_log(store: Store, release: Release) -> ReleaseWithLog:
    log = store.log_lines(release.pk)
    return ReleaseWithLog.model_validate(_with_history(store, release) | {"log": log})


def _with_history(store: Store, release: Release) -> dict[str, object]:
    """The release's columns, its state changes and the seconds spent in each state."""
    history = store.events(release.pk)
    columns = {name: getattr(release, name) for name in ReleaseView.model_fields}
    return columns | {"events": history, "timings": step_timings(history)}


def step_timings(history: list[ReleaseEvent]) -> dict[str, float]:
    """Seconds spent in each state, from one state change to the next."""
    timings: dict[str, float] = {}
    for current, following in itertools.pairwise(history):
        timings[current.state] = round(following.at - current.at, 3)
    return timings


def app_view(store: Store, settings: Settings, census: Censuses, app: App) -> AppView:
    live = store.live_release(app)
    view = ReleaseView.model_validate(live) if live else None
    found = _app(AppView, settings, census, app, store.domains.of(app), view)
    return found.model_copy(update={"kept_releases": kept_views(store, app)})


def kept_views(store: Store, app: App) -> list[KeptView]:
    """The app's releases kept for skew protection, oldest first."""
    return [
        KeptView(
            release=f"v{release.number}",
            until=release.kept.until,
            containers=[entry.container for entry in release.kept.web],
        )
        for release in store.kept_releases(app).get(app.pk, [])
        if release.kept is not None
    ]


def apps_view(
    store: Store, settings: Settings, census: Censuses, apps: list[App]
) -> list[AppBrief]:
    """The apps, each live release in brief (`brief_view`), from three queries whatever
    their number."""
    live, domains = store.newest_briefs(ReleaseState.LIVE), store.domains.by_app()
    return [
        _app(AppBrief, settings, census, app, domains.get(app.pk, []), brief_view(live.get(app.pk)))
        for app in apps
    ]


def brief_view(brief: Mapping[str, object] | None) -> ReleaseBrief | None:
    """A release's columns in brief (`Store.newest_briefs`) as its view."""
    return ReleaseBrief.model_validate(brief) if brief else None


def _app(
    view: type[A],
    settings: Settings,
    census: Censuses,
    app: App,
    domains: list[str],
    live: ReleaseBrief | None,
) -> A:
    return view(
        name=app.name,
        created_at=app.created_at,
        url=settings.app_url(app.name),
        domains=domains,
        git_url=f"{settings.listen.url}/{app.name}.git",
        live_release=live,
        processes=census.get(app.name) if live is not None else None,
        stopped=app.stopped,
        destroying=app.destroying,
        maintenance_since=app.maintenance_since,
    )


class Removed(View):
    """What a destroy removed."""

    containers: list[str]  # drained, then stopped and removed
    images: list[str]  # tags
    volumes: list[str]  # named volumes, with ?volumes=true only
    releases: int  # release records, with their state changes and logs
    domains: list[str]
    certificates: list[str]  # hosts whose uploaded certificate was removed
    tokens: list[str]  # names of the tokens scoped to the app
    repository: bool  # its git repository


class Kept(View):
    """What a destroy kept on purpose."""

    volumes: list[str]  # named volumes, with their data: ?volumes=true removes them


class DestroyedView(View):
    app: str
    removed: Removed
    kept: Kept


def destroyed_view(destroyed: Destroyed) -> DestroyedView:
    erased = destroyed.erased
    removed = Removed(
        containers=list(destroyed.containers),
        images=list(destroyed.images),
        volumes=list(destroyed.volumes_removed),
        releases=len(erased.release_ids),
        domains=list(erased.domains),
        certificates=list(destroyed.certificates),
        tokens=list(erased.tokens),
        repository=destroyed.repository,
    )
    kept = Kept(volumes=list(destroyed.volumes_kept))
    return DestroyedView(app=destroyed.app, removed=removed, kept=kept)
