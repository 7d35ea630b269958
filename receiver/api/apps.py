"""The REST API: apps and releases, Bearer-token protected."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from pipeline.errors import InvalidInput
from pipeline.git import repo as gitrepo
from pipeline.hosting import sites
from pipeline.sqlite.models import App
from receiver.api.views import (
    AppBrief,
    AppView,
    ReleaseDetail,
    ReleaseWithLog,
    app_view,
    apps_view,
    release_view,
    release_with_log,
)
from receiver.auth import Principal, bearer_token, guarded_authenticate
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

# Release numbers and ids are SQLite integers: bound them so no request can overflow one.
Number = Annotated[int, Path(ge=1, le=2**31 - 1)]
BodyNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]
QueryNumber = Annotated[int, Query(ge=1, le=2**31 - 1)]


class Body(BaseModel):
    """A request body: a field the API does not know is refused (422), never ignored."""

    model_config = ConfigDict(extra="forbid")


APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")

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
    who.require_app(name)
    return daemon.store.get_app(name)


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
def list_releases(name: str, daemon: DaemonDep, who: PrincipalDep) -> list[ReleaseDetail]:
    app = app_for(daemon, who, name)
    return [release_view(daemon.store, release) for release in daemon.store.releases(app)]


@router.get("/apps/{name}/releases/{number}")
def get_release(name: str, number: Number, daemon: DaemonDep, who: PrincipalDep) -> ReleaseWithLog:
    app = app_for(daemon, who, name)
    return release_with_log(daemon.store, daemon.store.release_by_number(app, number))
