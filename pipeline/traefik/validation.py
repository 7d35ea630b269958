"""The checks a route passes before Traefik reads it. One invalid file freezes Traefik's file
provider for every app (it keeps the last good configuration), so a document temps did not make
as it should is refused before it is published, and one found on disk is left out of the
table."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence

from pipeline.app.names import is_app_name
from pipeline.errors import SwitchFailed
from pipeline.traefik.documents import (
    HOST,
    MAX_HSTS_SECONDS,
    MAX_KEPT,
    RELEASE_HEADER,
    RELEASE_PREFIX,
    Kept,
    Site,
    canary_services,
    host_rule,
    release_headers,
    release_middleware,
    servers_of,
    skew_name,
    skew_rule,
)
from pipeline.traefik.dynamic import Dynamic, Middleware

_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,40}$")  # "v12": a middleware's name holds it
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
# A kept release's label: it goes into a router's name, a rule and a regular expression.
_KEPT_RELEASE = re.compile(r"^v[0-9]{1,9}$")


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
    if not _RELEASE.match(release) or set(headers) - {RELEASE_HEADER, "Retry-After", "Set-Cookie"}:
        raise SwitchFailed(f"invalid release header: {headers}")
    if after is not None and not after.isdigit():
        raise SwitchFailed(f"invalid Retry-After: {after!r}")
    retry_after, cookie = None if after is None else int(after), "Set-Cookie" in headers
    if headers != release_headers(release, retry_after, cookie):
        raise SwitchFailed(f"invalid release header: {headers}")
    if set(middleware) != {"headers"} or set(middleware["headers"]) != {"customResponseHeaders"}:
        raise SwitchFailed(f"the release header middleware does more: {middleware}")
    if name != release_middleware(release, retry_after, cookie):
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


def validate_kept(app: str, kept: Sequence[Kept]) -> None:
    """An app's kept releases: a few, each named once as a release is, each served by at
    least one container at an address Traefik may be given."""
    if not is_app_name(app):
        raise SwitchFailed(f"invalid app name for a route: {app!r}")
    if len(kept) > MAX_KEPT:
        raise SwitchFailed(f"an app keeps at most {MAX_KEPT} releases, not {len(kept)}")
    labels = [one.release for one in kept]
    if len(set(labels)) != len(labels):
        raise SwitchFailed(f"a kept release is named twice: {labels}")
    for one in kept:
        if not _KEPT_RELEASE.match(one.release):
            raise SwitchFailed(f"invalid kept release: {one.release!r}")
        if not one.server_urls or not all(_server_url(url) for url in one.server_urls):
            raise SwitchFailed(f"invalid servers for kept {one.release}: {one.server_urls}")


def validate_route(app: str, document: Dynamic, kept: Sequence[Kept] = ()) -> None:
    """A whole route (`route_document`): the app's routers over its service, and the shared
    middlewares they name; beside them the routers of its `kept` releases, each matching the
    app's hosts and its release only."""
    validate_kept(app, kept)
    http = document["http"]
    routers = dict(http.get("routers", {}))
    if app not in routers:
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    rule = routers[app]["rule"]
    hosts = tuple(re.findall(r"Host\(`([^`]*)`\)", rule))
    if not hosts or rule != host_rule(hosts):
        raise SwitchFailed(f"invalid router rule: {rule!r}")
    validate_site(Site(app, hosts))
    services = dict(http.get("services", {}))
    skew_headers = set()
    for one in kept:
        name = skew_name(app, one.release)
        for router in (name, f"{name}_tls"):
            found = routers.pop(router, None)
            if found is not None and found["rule"] != skew_rule(hosts, one.release):
                raise SwitchFailed(f"invalid rule for kept {one.release}: {found['rule']!r}")
        services.pop(name, None)
        skew_headers.add(release_middleware(one.release, cookie=one.cookie))
    if any(name not in (app, *canary_services(app)) for name in services):
        raise SwitchFailed(f"a route holds services of its own: {sorted(services)}")
    if any(not name.startswith(f"{app}_") for name in set(routers) - {app}):
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    named = set(routers[app].get("middlewares", ()))
    live = {n: m for n, m in http.get("middlewares", {}).items() if n.startswith(RELEASE_PREFIX)}
    headers = {n: m for n, m in live.items() if n in named or n not in skew_headers}
    validate_service(app, {"http": {"middlewares": headers, "services": services}})
