"""Every app's route in one file for Traefik, so a switch costs one small reload.

On every change Traefik's file provider reads and decodes each file of its directory again,
then rebuilds every router. Measured here, rename to first answer from the new server: 7 ms
with one app, 48 to 79 ms with 100 apps in 100 files, 33 to 38 ms with the same routes in one
file (BENCHMARKS.md, "scale"). So each app's route is kept as its own document under
`traefik/routes/` (written atomically, read back for restores and at start-up), and the one
watched file, `dynamic/routes.yml`, is rendered from all of them under one lock and moved in
with one rename. Traefik never sees a half-written table, and apps switching at the same
moment never lose each other's change.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import structlog

from pipeline.errors import SwitchFailed
from pipeline.settings import Settings
from pipeline.traefik.config import TLS_FILE, render, validate_route, write_atomically

log = structlog.get_logger()

TABLE_FILE = "routes.yml"
SECTIONS = ("routers", "middlewares", "services")

_lock = threading.Lock()
# The routes of each home, as last written: a switch renders the table without reading every
# app's file again. Loaded from disk on first use and by tidy() at start-up.
_known: dict[Path, dict[str, dict[str, Any]]] = {}


def route_path(settings: Settings, app: str) -> Path:
    return settings.routes_dir / f"{app}.json"


def table_path(settings: Settings) -> Path:
    return settings.dynamic_dir / TABLE_FILE


def read_route(settings: Settings, app: str) -> bytes | None:
    """The app's route document as published, or None when it has no route."""
    try:
        return route_path(settings, app).read_bytes()
    except FileNotFoundError:
        return None


def publish_route(settings: Settings, app: str, document: dict[str, Any]) -> None:
    """Validate, keep the app's route, and publish the table with it."""
    validate_route(app, document)
    _put(settings, app, render(document))


def restore_route(settings: Settings, app: str, previous: bytes | None) -> None:
    """Put back what read_route() returned before a publish; None removes the app's route."""
    _put(settings, app, previous)


def render_table(routes: dict[str, dict[str, Any]]) -> bytes:
    """All apps' routers, middlewares and services in one document, by app name."""
    http: dict[str, dict[str, Any]] = {}
    for app in sorted(routes):
        for section in SECTIONS:
            entries = routes[app]["http"].get(section)
            if entries:
                http.setdefault(section, {}).update(entries)
    # Traefik refuses an empty section ("cannot be a standalone element") and then freezes
    # every route; with no route at all the document is empty, which it reads as no routes.
    document = {"http": http} if http else {}
    # Compact: Traefik parses this whole file at every switch.
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


def tidy(settings: Settings, apps: set[str]) -> list[str]:
    """At start-up: keep the routes of known apps only, publish them, clear out the rest.

    An unknown or invalid file in `dynamic/` could freeze or shadow every route. Route files
    of the one-file-per-app layout are taken over for the apps that have no route yet.
    """
    for app in apps:
        legacy = settings.dynamic_dir / f"{app}.yml"
        if legacy.is_file() and not route_path(settings, app).exists():
            write_atomically(settings.staging_dir, route_path(settings, app), legacy.read_bytes())
    kept = {f"{app}.json" for app in apps}
    removed = [f"routes/{name}" for name in _clear(settings.routes_dir, kept)]
    with _lock:
        _known.pop(settings.routes_dir, None)
        content = render_table(_routes(settings))
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
        _publish_table(settings, routes)
        _known[settings.routes_dir] = routes
        if content is None:
            path.unlink(missing_ok=True)
        else:
            write_atomically(settings.staging_dir, path, content, durable=False)


def _routes(settings: Settings) -> dict[str, dict[str, Any]]:
    """The routes of this home, read from disk the first time (call with the lock held)."""
    routes = _known.get(settings.routes_dir)
    if routes is None:
        routes = {}
        for path in sorted(settings.routes_dir.glob("*.json")):
            try:
                document = json.loads(path.read_bytes())
                validate_route(path.stem, document)
            except (ValueError, KeyError, TypeError, AttributeError, SwitchFailed) as exc:
                # Left out of the table, where it would freeze every route; reconciliation
                # writes the app's route again from its live release.
                log.error("traefik.route_file_invalid", file=path.name, error=str(exc))
                path.unlink()
                continue
            routes[path.stem] = document
        _known[settings.routes_dir] = routes
    return routes


def _publish_table(settings: Settings, routes: dict[str, dict[str, Any]]) -> None:
    write_atomically(settings.staging_dir, table_path(settings), render_table(routes))


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
