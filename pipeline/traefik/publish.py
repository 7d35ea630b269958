"""Moving an app's route: publish, confirm through Traefik, and restore the old route when
Traefik does not confirm. The deploy's switch, the bake window's flip back and
reconciliation at start all go through `route`."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import DeployError
from pipeline.settings import Settings
from pipeline.traefik import routes
from pipeline.traefik.config import confirm_route, confirm_unrouted, render, route_document


def route(
    settings: Settings, app: str, server_urls: Sequence[str], label: str, probe_path: str
) -> float:
    """Point the app at `server_urls` and confirm it; returns the seconds it took. On failure
    the route Traefik had before is put back, and the error raised."""
    document = route_document(app, settings.hosts(app), server_urls, label)
    before = routes.read_route(settings, app)
    routes.publish_route(settings, app, document)
    try:
        return confirm_route(settings, app, server_urls, probe_path, label)
    except DeployError:
        routes.restore_route(settings, app, before)
        raise


def is_routed(settings: Settings, app: str, server_urls: Sequence[str], label: str) -> bool:
    """Whether the app's published route is already exactly this one."""
    document = route_document(app, settings.hosts(app), server_urls, label)
    return routes.read_route(settings, app) == render(document)


def unroute(settings: Settings, app: str, label: str) -> bool:
    """Keep the app's hosts with no server behind them (Traefik answers 503); False when
    Traefik did not confirm it in time."""
    routes.publish_route(settings, app, route_document(app, settings.hosts(app), (), label))
    return confirm_unrouted(settings, app)
