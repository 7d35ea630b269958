"""The REST API: apps and releases, Bearer-token protected."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from pipeline.app.names import APP_NAME
from pipeline.errors import InvalidInput, NotFound
from pipeline.git import repo as gitrepo
from pipeline.hosting import sites
from pipeline.sqlite.models import App, Scope
from receiver.api.views import (
    AppBrief,
    AppView,
    DestroyedView,
    ReleaseDetail,
    ReleaseWithLog,
    app_view,
    apps_view,
    destroyed_view,
    release_view,
    release_with_log,
)
from receiver.auth import Principal, bearer_token, guarded_authenticate
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES
from receiver.waits import waiting

# Release numbers and ids are SQLite integers: bound them so no request can overflow one.
Number = Annotated[int, Path(ge=1, le=2**31 - 1)]
BodyNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]
QueryNumber = Annotated[int, Query(ge=1, le=2**31 - 1)]
RELEASES_SHOWN = 100
ReleasesShown = Annotated[int, Query(ge=1, le=RELEASES_SHOWN)]


class Body(BaseModel):
    """A request body: a field the API does not know is refused (422), never ignored."""

    model_config = ConfigDict(extra="forbid")


router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


# An HTTPConnection, not a Request: the WebSocket routes depend on these too.
def daemon_of(request: HTTPConnection) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


DaemonDep = Annotated[Daemon, Depends(daemon_of)]


def client_address(request: HTTPConnection) -> str:
    return request.client.host if request.client else "unknown"


def principal(
    request: HTTPConnection,
    daemon: DaemonDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    return guarded_authenticate(
        daemon.store,
        daemon.limiter,
        client_address(request),
        bearer_token(authorization),
        request.url.path,
    )


PrincipalDep = Annotated[Principal, Depends(principal)]


def app_for(daemon: Daemon, who: Principal, name: str) -> App:
    """The app `name`, when `who` may act on it: an admin token on any app, a deploy token
    on its own app and on that app's previews. Any other app is refused alike, whether it
    exists or not."""
    if who.scope != Scope.ADMIN and who.app != name and _previewed(daemon, name) != who.app:
        who.require_app(name)
    return daemon.store.get_app(name)


def _previewed(daemon: Daemon, name: str) -> str | None:
    """The app that the app `name` is a preview of; None for an app of its own, or none."""
    try:
        app = daemon.store.get_app(name)
    except NotFound:
        return None
    if app.preview_of is None:
        return None
    return daemon.store.get_app_by_id(app.preview_of).name


def app_to_change(daemon: Daemon, who: Principal, name: str) -> App:
    """`app_for`, for a call that changes the app or starts something for it: refused (409)
    while the app is being destroyed."""
    app = app_for(daemon, who, name)
    daemon.destroyer.ctx.destroying.refuse(name)
    return app


class AppCreate(Body):
    name: str


def validate_app_name(name: str) -> str:
    if not APP_NAME.match(name):
        raise InvalidInput(
            f"invalid app name {name!r}: use 1-31 characters a-z, 0-9 and '-', "
            "starting with a letter"
        )
    return name


@router.post("/apps", status_code=201)
def create_app(body: AppCreate, daemon: DaemonDep, who: PrincipalDep) -> AppView:
    who.require_admin()
    name = validate_app_name(body.name)
    sites.refuse_taken(daemon.settings, daemon.store, daemon.settings.default_host(name))
    app = daemon.store.create_app(name)
    sites.rehost(daemon.settings, daemon.store, app)  # kept for the first switch to publish
    gitrepo.init_bare(daemon.settings.repo_path(name))
    return app_view(daemon.store, daemon.settings, daemon.supervisor.census, app)


@router.get("/apps")
def list_apps(daemon: DaemonDep, who: PrincipalDep) -> list[AppBrief]:
    apps = daemon.store.list_apps()
    seen = [app for app in apps if who.scope == "admin" or who.app == app.name]
    return apps_view(daemon.store, daemon.settings, daemon.supervisor.census, seen)


@router.get("/apps/{name}")
def get_app(name: str, daemon: DaemonDep, who: PrincipalDep) -> AppView:
    return app_view(
        daemon.store, daemon.settings, daemon.supervisor.census, app_for(daemon, who, name)
    )


@router.get("/apps/{name}/releases")
def list_releases(
    name: str, daemon: DaemonDep, who: PrincipalDep, limit: ReleasesShown = RELEASES_SHOWN
) -> list[ReleaseDetail]:
    """The newest `limit` releases, newest first (at most 100: an answer that grew with the
    app's history would grow the daemon's memory with it)."""
    app = app_for(daemon, who, name)
    releases = daemon.store.releases(app, limit)
    return [release_view(daemon.store, release) for release in releases]


@router.get("/apps/{name}/releases/{number}")
def get_release(name: str, number: Number, daemon: DaemonDep, who: PrincipalDep) -> ReleaseWithLog:
    app = app_for(daemon, who, name)
    return release_with_log(daemon.store, daemon.store.release_by_number(app, number))


def confirmed(name: str, confirm: str | None) -> None:
    """A destroy names its app twice, so that no stray request destroys one."""
    if confirm is None:
        raise InvalidInput(
            f"destroying {name!r} removes it for good: confirm with ?confirm={name}; "
            "nothing was changed"
        )
    if confirm != name:
        raise InvalidInput(
            f"confirm {confirm[:64]!r} does not name {name!r}: confirm with ?confirm={name}; "
            "nothing was changed"
        )


@router.delete("/apps/{name}")
async def destroy_app(
    name: str,
    daemon: DaemonDep,
    who: PrincipalDep,
    confirm: str | None = None,
    volumes: bool = False,
) -> DestroyedView:
    """Destroy the app for good (admin; `confirm` repeats its name): its deploys cancelled,
    its routes out of Traefik in one change, its containers drained and stopped, its images,
    repository, uploaded certificates, tokens and records removed. Its named volumes are
    kept, and named in the answer, unless `volumes` is true. Answered once it is done; a
    second call while it runs waits for the same destroy."""
    who.require_admin()

    def check() -> None:
        daemon.store.get_app(name)
        confirmed(name, confirm)

    await run_in_threadpool(check)
    return destroyed_view(await waiting(daemon.destroyer.destroy, name, volumes))
