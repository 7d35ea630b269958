"""Every app's route in one file for Traefik, so a switch costs one small reload.

On every change Traefik's file provider reads and decodes each file of its directory again,
then rebuilds every router, service and middleware. Measured here, rename to first answer from
the new server: 7 ms with one app, 48 to 79 ms with 100 apps in 100 files, 33 to 38 ms with the
same routes in one file (BENCHMARKS.md, "scale"). So each app's route is kept as its own
document under `traefik/routes/` (written atomically, read back for restores and at start-up),
and the one watched file, `dynamic/routes.yml`, is made of all of them under one lock and moved
in with one rename. Traefik never sees a half-written table, and apps switching at the same
moment never lose each other's change.

What is kept per app is its service document; its routers come from its site (the hosts it
is served at), which the daemon sets from the records at start and on every domain change,
and from its kept releases (skew protection), set from the records at start and whenever one
is kept or let go.
An app with a service and no site set is served at its default host. Each app's share of the
table is kept rendered (`pipeline.traefik.table`): a switch or a domain change renders its own
app's again, and the table is the others' joined to it. Traefik's own work still grows with
the apps, since it rebuilds all of them; the table gives it as few objects as it can
(`pipeline.traefik.documents`).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import structlog

from pipeline.errors import DiskFull, SwitchFailed
from pipeline.settings import Settings
from pipeline.traefik.config import TLS_FILE, write_atomically
from pipeline.traefik.documents import Kept, Site, current_service, render, route_document
from pipeline.traefik.dynamic import Dynamic, Router
from pipeline.traefik.table import Part, join, render_part
from pipeline.traefik.validation import validate_kept, validate_service, validate_site

log = structlog.get_logger()

TABLE_FILE = "routes.yml"
# Which version of a route file is on disk: inode, mtime (ns), size.
RouteStamp = tuple[int, int, int]

_lock = threading.Lock()
# The service documents of each home, as last written: a switch renders the table without
# reading every app's file again. Loaded from disk on first use and by tidy() at start-up.
_known: dict[Path, dict[str, Dynamic]] = {}
# The sites of each home's apps, as last published.
_sites: dict[Path, dict[str, Site]] = {}
# The kept releases of each home's apps, as last published.
_kept: dict[Path, dict[str, tuple[Kept, ...]]] = {}
# Each app's part of each home's table, as last published.
_parts: dict[Path, dict[str, Part]] = {}


def route_path(settings: Settings, app: str) -> Path:
    return settings.routes_dir / f"{app}.json"


def table_path(settings: Settings) -> Path:
    return settings.dynamic_dir / TABLE_FILE


def route_stamp(settings: Settings, app: str) -> RouteStamp | None:
    """Which version of the app's service document is on disk (inode, mtime, size): a file
    replaced or edited gets another; None when there is none."""
    try:
        found = route_path(settings, app).stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def read_route(settings: Settings, app: str) -> bytes | None:
    """The app's service document as published, or None when it has no route."""
    try:
        return route_path(settings, app).read_bytes()
    except FileNotFoundError:
        return None


def publish_route(settings: Settings, app: str, document: Dynamic) -> None:
    """Validate, keep the app's service document, and publish the table with it."""
    validate_service(app, document)
    _put(settings, app, render(document))


def site_of(settings: Settings, app: str) -> Site:
    """The site the app's routers are made from, as last published."""
    with _lock:
        return _site(settings, app)


def routers_of(settings: Settings, app: str) -> dict[str, Router]:
    """The app's routers as the table has them; none when it has no route."""
    with _lock:
        service = _routes(settings).get(app)
        if service is None:
            return {}
        route = route_document(_site(settings, app), service, _kept_of(settings, app))
        return route["http"].get("routers", {})


def kept_of(settings: Settings, app: str) -> tuple[Kept, ...]:
    """The app's kept releases, as last published."""
    with _lock:
        return _kept_of(settings, app)


def publish_kept(settings: Settings, app: str, kept: tuple[Kept, ...]) -> bool:
    """Keep the app's kept releases and, when the app has a route, publish the table with
    their routers; returns whether it had one."""
    validate_kept(app, kept)
    with _lock:
        known = _kept.setdefault(settings.routes_dir, {})
        routes = _routes(settings)
        was = known.get(app, ())
        known[app] = kept
        if app not in routes:
            return False
        try:
            _publish_table(settings, routes, app)
        except OSError:
            known[app] = was
            raise
        return True


def publish_site(settings: Settings, site: Site) -> bool:
    """Keep the app's site and, when the app has a route, publish the table with it;
    returns whether it had one (an app never deployed has nothing to route yet)."""
    validate_site(site)
    with _lock:
        sites = _sites.setdefault(settings.routes_dir, {})
        routes = _routes(settings)
        was = sites.get(site.app)
        sites[site.app] = site
        if site.app not in routes:
            return False
        try:
            _publish_table(settings, routes, site.app)
        except OSError:
            _put_back(sites, site.app, was)
            raise
        return True


def restore_route(settings: Settings, app: str, previous: bytes | None) -> None:
    """Put back what read_route() returned before a publish; None removes the app's route."""
    _put(settings, app, previous)


def forget(settings: Settings, app: str) -> None:
    """An app being destroyed: its service and site leave the table in one change. Its own
    file goes first, so that a daemon stopped in between never publishes it again."""
    with _lock:
        route_path(settings, app).unlink(missing_ok=True)
        routes = dict(_routes(settings))
        routes.pop(app, None)
        _publish_table(settings, routes, app)
        _known[settings.routes_dir] = routes
        _sites.setdefault(settings.routes_dir, {}).pop(app, None)
        _kept.setdefault(settings.routes_dir, {}).pop(app, None)


def tidy(
    settings: Settings, sites: dict[str, Site], skew: dict[str, tuple[Kept, ...]] | None = None
) -> list[str]:
    """At start-up: keep the routes of known apps only, publish them with their sites and
    kept releases, clear out the rest.

    An unknown or invalid file in `dynamic/` could freeze or shadow every route. Route files
    of the one-file-per-app layout are taken over for the apps that have no route yet.
    """
    for app in sites:
        legacy = settings.dynamic_dir / f"{app}.yml"
        if legacy.is_file() and not route_path(settings, app).exists():
            write_atomically(settings.staging_dir, route_path(settings, app), legacy.read_bytes())
    kept = {f"{app}.json" for app in sites}
    removed = [f"routes/{name}" for name in _clear(settings.routes_dir, kept)]
    for site in sites.values():
        validate_site(site)
    held = {app: found for app, found in (skew or {}).items() if app in sites}
    for app, found in held.items():
        validate_kept(app, found)
    with _lock:
        _known.pop(settings.routes_dir, None)
        _parts.pop(settings.routes_dir, None)
        _sites[settings.routes_dir] = dict(sites)
        _kept[settings.routes_dir] = held
        content, parts = _table(settings, _routes(settings))
        _parts[settings.routes_dir] = parts
        target = table_path(settings)
        if not target.is_file() or target.read_bytes() != content:
            write_atomically(settings.staging_dir, target, content)
    return removed + _clear(settings.dynamic_dir, {TLS_FILE, TABLE_FILE})


def _put(settings: Settings, app: str, content: bytes | None) -> None:
    path = route_path(settings, app)
    with _lock:
        routes = dict(_routes(settings))
        if content is None:
            routes.pop(app, None)
        else:
            routes[app] = json.loads(content)
        # The table first: it is what Traefik switches on. The app's own file follows without
        # an fsync of its own: after a crash, reconciliation writes every live route again
        # from the records, and an unreadable file is left out of the table.
        _publish_table(settings, routes, app)
        _known[settings.routes_dir] = routes
        if content is None:
            path.unlink(missing_ok=True)
            return
        try:
            write_atomically(settings.staging_dir, path, content, durable=False)
        except DiskFull as exc:
            # Traefik has moved already: raising now would have a deploy stop the slot it
            # routes to. The file is written again with the app's next route, or at start.
            log.error("traefik.route_file_unwritten", app=app, error=str(exc))


def _site(settings: Settings, app: str) -> Site:
    """(Call with the lock held.)"""
    site = _sites.get(settings.routes_dir, {}).get(app)
    return site if site is not None else Site(app, (settings.default_host(app),))


def _kept_of(settings: Settings, app: str) -> tuple[Kept, ...]:
    """(Call with the lock held.)"""
    return _kept.get(settings.routes_dir, {}).get(app, ())


def _put_back(sites: dict[str, Site], app: str, site: Site | None) -> None:
    if site is None:
        sites.pop(app, None)
    else:
        sites[app] = site


def _routes(settings: Settings) -> dict[str, Dynamic]:
    """The service documents of this home, read from disk the first time (call with the lock
    held). One an earlier version wrote is written again as this one writes it (so that
    reconciliation finds the live ones as it would publish them, rather than publishing
    every app again)."""
    routes = _known.get(settings.routes_dir)
    if routes is None:
        routes = {}
        for path in sorted(settings.routes_dir.glob("*.json")):
            try:
                document, changed = current_service(path.stem, json.loads(path.read_bytes()))
                validate_service(path.stem, document)
            except (ValueError, KeyError, TypeError, AttributeError, SwitchFailed) as exc:
                # Left out of the table, where it would freeze every route; reconciliation
                # writes the app's route again from its live release.
                log.error("traefik.route_file_invalid", file=path.name, error=str(exc))
                path.unlink()
                continue
            if changed:
                write_atomically(settings.staging_dir, path, render(document), durable=False)
            routes[path.stem] = document
        _known[settings.routes_dir] = routes
    return routes


def _table(
    settings: Settings, routes: dict[str, Dynamic], changed: str = ""
) -> tuple[bytes, dict[str, Part]]:
    """The table of `routes`, and its parts: the app `changed` rendered again, every other
    as it was (call with the lock held)."""
    rendered = _parts.get(settings.routes_dir, {})
    parts = {}
    for app in sorted(routes):
        part = rendered.get(app) if app != changed else None
        if part is None:
            route = route_document(_site(settings, app), routes[app], _kept_of(settings, app))
            part = render_part(route)
        parts[app] = part
    return join(parts.values()), parts


def _publish_table(settings: Settings, routes: dict[str, Dynamic], changed: str) -> None:
    """(Call with the lock held.) The parts are kept once the table is written."""
    content, parts = _table(settings, routes, changed)
    write_atomically(settings.staging_dir, table_path(settings), content)
    _parts[settings.routes_dir] = parts


def _clear(directory: Path, keep: set[str]) -> list[str]:
    """Remove every entry of `directory` not named in `keep`; returns the names removed."""
    removed = []
    for path in sorted(directory.iterdir()):
        if path.name in keep:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path.name)
    return removed
