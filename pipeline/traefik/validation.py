"""The checks a route passes before Traefik reads it. One invalid file freezes Traefik's file
provider for every app (it keeps the last good configuration), so a document temps did not make
as it should is refused before it is published, and one found on disk is left out of the
table."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from pipeline.app.names import is_app_name
from pipeline.errors import SwitchFailed
from pipeline.traefik.documents import (
    HOST,
    MAX_HSTS_SECONDS,
    RELEASE_HEADER,
    RELEASE_PREFIX,
    Site,
    canary_services,
    host_rule,
    release_middleware,
    servers_of,
)
from pipeline.traefik.dynamic import Dynamic, Middleware

_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,40}$")  # "v12": a middleware's name holds it
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def validate_service(app: str, document: Dynamic) -> None:
    """Refuse anything that would freeze Traefik's file provider for every app."""
    if not is_app_name(app):
        raise SwitchFailed(f"invalid app name for a route: {app!r}")
    http = document["http"]
    if set(http) - {"middlewares", "services"}:
        raise SwitchFailed("a service document holds only the app's service and middleware")
    services = set(http["services"])
    if app not in services:
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    if services - {app, *canary_services(app)}:
        raise SwitchFailed(f"a service document holds services of its own: {services}")
    _validate_release(http.get("middlewares", {}))
    for url in servers_of(document):
        if not _server_url(url):
            raise SwitchFailed(f"invalid server URL: {url!r}")


def _validate_release(middlewares: Mapping[str, Middleware]) -> None:
    """One middleware: the release header, named after what it sends, as every app that
    names it expects."""
    if len(middlewares) != 1:
        raise SwitchFailed(f"a service document holds one middleware, not {sorted(middlewares)}")
    [(name, middleware)] = middlewares.items()
    headers = middleware.get("headers", {}).get("customResponseHeaders", {})
    release, after = headers.get(RELEASE_HEADER, ""), headers.get("Retry-After")
    if not _RELEASE.match(release) or set(headers) - {RELEASE_HEADER, "Retry-After"}:
        raise SwitchFailed(f"invalid release header: {headers}")
    if after is not None and not after.isdigit():
        raise SwitchFailed(f"invalid Retry-After: {after!r}")
    if set(middleware) != {"headers"} or set(middleware["headers"]) != {"customResponseHeaders"}:
        raise SwitchFailed(f"the release header middleware does more: {middleware}")
    if name != release_middleware(release, None if after is None else int(after)):
        raise SwitchFailed(f"the release header middleware is misnamed: {name!r}")


def _server_url(url: str) -> bool:
    """http://<an IPv4 address>:<port>: loopback on a single host, a node's on Swarm. Never a
    name, which Traefik would resolve at every request."""
    found = re.fullmatch(r"http://([0-9.]{7,15}):(\d{1,5})", url)
    if not found or not 0 < int(found.group(2)) < 65536:
        return False
    try:
        address = ipaddress.IPv4Address(found.group(1))
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_multicast or address == _BROADCAST)


def validate_site(site: Site) -> None:
    if not is_app_name(site.app):
        raise SwitchFailed(f"invalid app name for a route: {site.app!r}")
    if not site.hosts:
        raise SwitchFailed(f"app {site.app!r} has no host name to be served at")
    for host in site.hosts:
        if not HOST.fullmatch(host):
            raise SwitchFailed(f"invalid host name in route: {host!r}")
    if len(set(site.hosts)) != len(site.hosts):
        raise SwitchFailed(f"a host of app {site.app!r} is named twice: {site.hosts}")
    if not 0 <= site.hsts_seconds <= MAX_HSTS_SECONDS:
        raise SwitchFailed(f"HSTS of {site.hsts_seconds}s is out of range")


def validate_route(app: str, document: Dynamic) -> None:
    """A whole route (`route_document`): the app's routers over its service, and the shared
    middlewares they name."""
    http = document["http"]
    routers = set(http.get("routers", ()))
    if app not in routers or any(not name.startswith(f"{app}_") for name in routers - {app}):
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    rule = http["routers"][app]["rule"]
    hosts = tuple(re.findall(r"Host\(`([^`]*)`\)", rule))
    if not hosts or rule != host_rule(hosts):
        raise SwitchFailed(f"invalid router rule: {rule!r}")
    validate_site(Site(app, hosts))
    service = http.copy()
    service.pop("routers", None)
    # The retries and HSTS the routers name are no part of the app's service.
    middlewares = service.get("middlewares", {}).items()
    service["middlewares"] = {n: m for n, m in middlewares if n.startswith(RELEASE_PREFIX)}
    validate_service(app, {"http": service})
