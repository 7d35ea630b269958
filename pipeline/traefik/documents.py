"""The dynamic documents Traefik reads for an app, and the checks they pass first.

An app's route has two halves with two owners. The *service* (the slot's servers and the
release header) moves with deploys: switches, flips back, reconciliation. The *site* (the
host names, and the routers that match them) moves when a domain is added or removed. The
route table joins them (`pipeline.traefik.routes`), so a domain change never touches the
servers and a switch never touches the hosts, whichever comes first.

JSON is valid YAML, so the documents are rendered with the json module.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.errors import SwitchFailed
from pipeline.traefik.dynamic import (
    HTTP,
    Dynamic,
    LoadBalancer,
    Middleware,
    Retry,
    Router,
    RouterTLS,
    Service,
    merged,
)

RELEASE_HEADER = "X-Temps-Release"
RESOLVER = "acme"
WEB, WEBSECURE = "web", "websecure"
# Shared by every app's redirecting router; no app's middleware name starts with "_".
HTTPS_REDIRECT = "_temps-https"
# Above a rule's length (Traefik's default priority), below its own ACME challenge router.
REDIRECT_PRIORITY = 100_000
MAX_HSTS_SECONDS = 2 * 365 * 24 * 3600
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True)
class Site:
    """Where and how an app is served: its default host first, then its custom domains; with
    HTTPS on, a websecure router per host (so each host has a certificate of its own, and one
    refused order holds up no other host)."""

    app: str
    hosts: tuple[str, ...]
    https: bool = False
    acme: frozenset[str] = frozenset()  # hosts whose websecure router orders a certificate
    redirected: frozenset[str] = frozenset()  # hosts whose plain HTTP redirects to HTTPS
    hsts_seconds: int = 0  # Strict-Transport-Security on HTTPS answers, when above 0

    def tls_router(self, host: str) -> str:
        # App names hold no "_" and host names no "_": the name is unique, and says both.
        return f"{self.app}_tls_{host.replace('.', '_')}"

    @property
    def redirect_router(self) -> str:
        return f"{self.app}_redirect"

    @property
    def hsts_middleware(self) -> str:
        return f"{self.app}_hsts"


def release_middleware(app: str) -> str:
    return f"{app}-release"


def retry_middleware(app: str) -> str:
    return f"{app}-retry"


def service_document(
    app: str,
    server_urls: Sequence[str],
    release: str,
    health_path: str | None = None,
    retry_after: int | None = None,
) -> Dynamic:
    """The app's service over the slot's containers; without a server Traefik answers the
    app's hosts with 503 (with `retry_after`, telling clients when to come back).

    With several containers, Traefik's own health check on `health_path` takes one that
    stopped answering out of the balance, and the retry middleware sends an idempotent
    request that could not reach one to another (Traefik retries no POST by default). One
    container has nowhere else to send it: its service has no health check of Traefik's."""
    balancer: LoadBalancer = {
        "servers": [{"url": url} for url in server_urls],
        "passHostHeader": True,
    }
    retry: Retry = {"attempts": max(len(server_urls), 1) + 1, "initialInterval": "20ms"}
    if health_path is not None and len(server_urls) > 1:
        balancer["healthCheck"] = {"path": health_path, "interval": "500ms", "timeout": "1s"}
        # Between two checks, a server whose request just failed is left out at once.
        balancer["passiveHealthCheck"] = {"failureWindow": "2s", "maxFailedAttempts": 1}
        # Docker's proxy accepts a connection for a container that just died, then closes it:
        # Traefik answers 502 without a network error to retry on. Another container can
        # answer it (GET, HEAD: Traefik retries no other method unless told to).
        retry["status"] = ["502"]
    headers = {RELEASE_HEADER: release}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return {
        "http": {
            "middlewares": {
                release_middleware(app): {"headers": {"customResponseHeaders": headers}},
                retry_middleware(app): {"retry": retry},
            },
            "services": {app: {"loadBalancer": balancer}},
        }
    }


def canary_services(app: str) -> tuple[str, str]:
    """The two halves of a split app's service: the live release's and the canary's."""
    return f"{app}_live", f"{app}_canary"


def canary_cookie(app: str) -> str:
    return f"temps-canary-{app}"


def split_document(
    app: str,
    live_urls: Sequence[str],
    canary_urls: Sequence[str],
    weight: int,
    release: str,
    health_path: str | None = None,
) -> Dynamic:
    """The app's service split between the live release and a canary: `weight` percent of
    new clients to the canary, the rest to the live release, each client kept on the one it
    got by a cookie. Each half balances its own containers as `service_document` does."""
    live, canary = canary_services(app)
    http = service_document(app, live_urls, release, health_path)["http"]
    halves = {
        live: _service(http, app),
        canary: _service(service_document(app, canary_urls, release, health_path)["http"], app),
    }
    split: Service = {
        "weighted": {
            "services": [
                {"name": live, "weight": 100 - weight},
                {"name": canary, "weight": weight},
            ],
            "sticky": {"cookie": {"name": canary_cookie(app), "httpOnly": True, "sameSite": "lax"}},
        }
    }
    http["services"] = {app: split, **halves}
    return {"http": http}


def _service(http: HTTP, name: str) -> Service:
    return http.get("services", {})[name]


def servers_of(document: Dynamic) -> list[str]:
    """Every server URL a service document routes to, in either half of a split."""
    services = document.get("http", {}).get("services", {})
    balancers = [s["loadBalancer"] for s in services.values() if "loadBalancer" in s]
    return [server["url"] for balancer in balancers for server in balancer["servers"]]


def router_document(site: Site) -> Dynamic:
    """The routers that send the site's hosts to the app's service: every host on the web
    entrypoint, the redirected ones sent to HTTPS first, and one websecure router per host."""
    release = [release_middleware(site.app), retry_middleware(site.app)]
    secure = [*release, site.hsts_middleware] if site.hsts_seconds > 0 else release
    routers: dict[str, Router] = {
        site.app: {
            "rule": host_rule(site.hosts),
            "service": site.app,
            "entryPoints": [WEB],
            "middlewares": release,
        }
    }
    redirected = [host for host in site.hosts if host in site.redirected]
    if site.https and redirected:
        routers[site.redirect_router] = {
            "rule": host_rule(redirected),
            "service": site.app,
            "entryPoints": [WEB],
            "middlewares": [HTTPS_REDIRECT],
            "priority": REDIRECT_PRIORITY,
        }
    for host in site.hosts if site.https else ():
        tls: RouterTLS = {"certResolver": RESOLVER} if host in site.acme else {}
        routers[site.tls_router(host)] = {
            "rule": host_rule([host]),
            "service": site.app,
            "entryPoints": [WEBSECURE],
            "middlewares": secure,
            "tls": tls,
        }
    if secure is release:
        return {"http": {"routers": routers}}
    hsts: Middleware = {"headers": {"stsSeconds": site.hsts_seconds}}
    return {"http": {"routers": routers, "middlewares": {site.hsts_middleware: hsts}}}


def host_rule(hosts: Sequence[str]) -> str:
    return " || ".join(f"Host(`{host}`)" for host in hosts)


def route_document(site: Site, service: Dynamic) -> Dynamic:
    """An app's whole route: the site's routers (and their middlewares) over the service
    document."""
    http = merged(service.get("http", {}), router_document(site).get("http", {}))
    # A service written before the retry middleware existed has none: its routers name only
    # the middlewares that are there (and the home's shared ones, whose names start with "_").
    defined = set(http.get("middlewares", ()))
    for router in http.get("routers", {}).values():
        names = router.get("middlewares", [])
        router["middlewares"] = [n for n in names if n in defined or n.startswith("_")]
    return {"http": http}


def validate_service(app: str, document: Dynamic) -> None:
    """Refuse anything that would freeze Traefik's file provider for every app."""
    if not _NAME.match(app):
        raise SwitchFailed(f"invalid app name for a route: {app!r}")
    http = document["http"]
    if set(http) - {"middlewares", "services"}:
        raise SwitchFailed("a service document holds only the app's service and middleware")
    middlewares = set(http["middlewares"])
    own = {release_middleware(app), retry_middleware(app)}
    services = set(http["services"])
    if app not in services or release_middleware(app) not in middlewares:
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    if services - {app, *canary_services(app)}:
        raise SwitchFailed(f"a service document holds services of its own: {services}")
    if not middlewares <= own:
        raise SwitchFailed(f"a service document holds middlewares of its own: {middlewares}")
    for url in servers_of(document):
        if not _server_url(url):
            raise SwitchFailed(f"invalid server URL: {url!r}")


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
    if not _NAME.match(site.app):
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
    """A whole route (`route_document`): the app's routers over its service."""
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
    validate_service(app, {"http": service})


def render(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, indent=2).encode() + b"\n"
