"""Moving an app's route: publish, confirm through Traefik, and restore what was there when
Traefik does not confirm. The deploy's switch, the bake window's flip back and
reconciliation all go through `route`; a domain change goes through `rehost`; a release kept
for skew protection, or let go, through `keep`; an app being destroyed leaves through
`withdraw`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from pipeline.errors import DeployError, SwitchFailed
from pipeline.settings import Settings
from pipeline.traefik import routes
from pipeline.traefik.config import (
    confirm_route,
    confirm_routers,
    confirm_split,
    confirm_unrouted,
    confirm_withdrawn,
)
from pipeline.traefik.documents import (
    Kept,
    Site,
    router_document,
    service_document,
    skew_name,
    skew_tls_router,
    split_document,
)


def route(
    settings: Settings,
    app: str,
    server_urls: Sequence[str],
    label: str,
    probe_path: str,
    cookie: bool = False,
) -> float:
    """Point the app at `server_urls` and confirm it; returns the seconds it took. On failure
    the route Traefik had before is put back, and the error raised. With `cookie`, answers
    set the release cookie (`[skew] cookie`)."""
    before = routes.read_route(settings, app)
    through = not routes.site_of(settings, app).maintenance
    document = service_document(app, server_urls, label, probe_path, cookie=cookie)
    routes.publish_route(settings, app, document)
    try:
        return confirm_route(settings, app, server_urls, probe_path, label, through)
    except DeployError:
        routes.restore_route(settings, app, before)
        raise


def split(
    settings: Settings,
    app: str,
    live_urls: Sequence[str],
    canary_urls: Sequence[str],
    weight: int,
    label: str,
    probe_path: str,
) -> float:
    """Send `weight` percent of the app's new clients to `canary_urls`, the rest to
    `live_urls`, and confirm it in Traefik's API; on failure the route it had is put back."""
    before = routes.read_route(settings, app)
    document = split_document(app, live_urls, canary_urls, weight, label, probe_path)
    routes.publish_route(settings, app, document)
    started = time.monotonic()
    if confirm_split(settings, app, document):
        return time.monotonic() - started
    routes.restore_route(settings, app, before)
    raise SwitchFailed(
        f"Traefik did not confirm the canary's share of {weight}% within "
        f"{settings.switch_confirm_timeout:g}s; the route it had is back"
    )


def is_routed(
    settings: Settings,
    app: str,
    server_urls: Sequence[str],
    label: str,
    probe_path: str,
    retry_after: int | None = None,
    cookie: bool = False,
) -> bool:
    """Whether the app's published service is already exactly this one. Compared parsed:
    rendering it indented, as it is written, runs Python's slow JSON encoder, and the
    supervisor asks this of every app once a second."""
    published = routes.read_route(settings, app)
    if published is None:
        return False
    try:
        found = json.loads(published)
    except ValueError:
        return False
    # Through JSON as well, so that tuples compare equal to the lists they are written as.
    document = service_document(app, server_urls, label, probe_path, retry_after, cookie)
    wanted = json.loads(json.dumps(document))
    return bool(found == wanted)


def unroute(settings: Settings, app: str, label: str, retry_after: int | None = None) -> bool:
    """Keep the app's hosts with no server behind them (Traefik answers 503, with a
    `Retry-After` when given); False when Traefik did not confirm it in time."""
    document = service_document(app, (), label, retry_after=retry_after)
    routes.publish_route(settings, app, document)
    return confirm_unrouted(settings, app)


def rehost(settings: Settings, site: Site) -> None:
    """Serve the app at the site's hosts, confirmed in Traefik's API; the hosts it had are
    put back when Traefik does not confirm. The servers behind them do not move."""
    before = routes.site_of(settings, site.app)
    if not routes.publish_site(settings, site):
        return  # nothing deployed yet: the first switch publishes the site with its route
    now = routes.routers_of(settings, site.app)
    gone = set(router_document(before)["http"]["routers"]) - set(now)
    if not confirm_routers(settings, now, gone):
        routes.publish_site(settings, before)
        raise SwitchFailed(
            f"Traefik did not confirm the hosts of {site.app} within "
            f"{settings.switch_confirm_timeout:g}s; it serves the ones it had"
        )


def keep(settings: Settings, app: str, kept: tuple[Kept, ...]) -> None:
    """Route the requests that name one of `kept` to it, and no longer those that name a
    release left out, confirmed in Traefik's API; the kept releases it had are put back
    when Traefik does not confirm."""
    before = routes.kept_of(settings, app)
    if not routes.publish_kept(settings, app, kept):
        return  # nothing routed yet
    now = routes.routers_of(settings, app)
    gone = {
        name
        for one in before
        for name in (skew_name(app, one.release), skew_tls_router(app, one.release))
    } - set(now)
    if not confirm_routers(settings, now, gone):
        routes.publish_kept(settings, app, before)
        raise SwitchFailed(
            f"Traefik did not confirm the kept releases of {app} within "
            f"{settings.switch_confirm_timeout:g}s; it routes the ones it had"
        )


def withdraw(settings: Settings, site: Site) -> None:
    """Take the app out of Traefik in one change, confirmed through its API: its hosts then
    answer 404, as any host Traefik does not know. Requests in flight finish."""
    routes.forget(settings, site.app)
    routers = router_document(site)["http"]["routers"]
    if not confirm_withdrawn(settings, site.app, routers):
        raise SwitchFailed(
            f"Traefik still routed {site.app} after {settings.switch_confirm_timeout:g}s; "
            "nothing of it was stopped"
        )
