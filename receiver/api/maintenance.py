"""Maintenance mode: an app's hosts answer 503 with `Retry-After` and its maintenance page,
while its containers keep running (a one-off run can migrate a quiet database), and deploys
go on behind the page until it is switched off.

The app's own deploy tokens may switch it, as they may run commands: a CI job that migrates
in maintenance holds no more than the app's token. The page itself is public: Traefik asks
for it at every request while the app is in maintenance, and it is what the app's hosts
show anyone then.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pipeline.errors import NotFound
from pipeline.hosting import maintenance, sites
from pipeline.sqlite.models import App
from pipeline.traefik.documents import MAINTENANCE_HEADER, MAINTENANCE_PATH
from receiver.api.apps import Body, DaemonDep, PrincipalDep, app_for, app_to_change
from receiver.api.views import View
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

log = structlog.get_logger()

router = APIRouter(responses=ERROR_RESPONSES)


class MaintenanceRequest(Body):
    on: bool


class MaintenanceView(View):
    app: str
    on: bool
    since: float | None  # when it went on
    retry_after: int  # the `Retry-After` of its 503s, in seconds


def maintenance_view(daemon: Daemon, app: App) -> MaintenanceView:
    return MaintenanceView(
        app=app.name,
        on=app.in_maintenance,
        since=app.maintenance_since,
        retry_after=daemon.settings.maintenance_retry_after,
    )


@router.get("/api/apps/{name}/maintenance")
def show_maintenance(name: str, daemon: DaemonDep, who: PrincipalDep) -> MaintenanceView:
    return maintenance_view(daemon, app_for(daemon, who, name))


@router.put("/api/apps/{name}/maintenance")
def set_maintenance(
    name: str, body: MaintenanceRequest, daemon: DaemonDep, who: PrincipalDep
) -> MaintenanceView:
    """On: every host of the app answers 503 from the next request on; off: they are the
    live release's again. Each is one change of the app's routers, confirmed in Traefik."""
    app = app_to_change(daemon, who, name)
    sites.set_maintenance(daemon.settings, daemon.store, app, body.on)
    log.info("app.maintenance", app=name, on=body.on, by=who.name)
    return maintenance_view(daemon, daemon.store.get_app(name))


@router.get(f"{MAINTENANCE_PATH}/{{name}}", include_in_schema=False)
def maintenance_page(name: str, daemon: DaemonDep) -> HTMLResponse:
    """The page of an app in maintenance (Traefik keeps its own status and headers); 404
    for an app that is not in maintenance, so nothing of an app shows here otherwise."""
    app = daemon.store.get_app(name)
    if not app.in_maintenance:
        raise NotFound(f"app {name!r} is not in maintenance")
    retry_after = str(daemon.settings.maintenance_retry_after)
    return HTMLResponse(
        maintenance.page(daemon.settings, daemon.store, app),
        status_code=503,
        headers={"Retry-After": retry_after, MAINTENANCE_HEADER: "on", "Cache-Control": "no-store"},
    )
