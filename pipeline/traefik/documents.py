"""The dynamic documents Traefik reads for an app, and the checks they pass first.

An app's route has two halves with two owners. The *service* (the slot's servers and the
release header) moves with deploys: switches, flips back, reconciliation. The *site* (the
host names, and the routers that match them) moves when a domain is added or removed. The
route table joins them (`pipeline.traefik.routes`), so a domain change never touches the
servers and a switch never touches the hosts, whichever comes first.

Traefik rebuilds every router, service and middleware of its file provider at every change,
and its cost grows with their number (BENCHMARKS.md, "traefik_rebuild"). So an app has objects
of its own only where it differs from every other: its routers and its service. Its
middlewares are shared with the apps that need the same: the release header by its value (a
header middleware cannot tell which app it answers for, but `X-Temps-Release: v3` is the same
for every app at v3; with a stopped app's `Retry-After` too), the retries, HSTS by its
lifetime. A shared middleware's name starts with "_", as no app's does, and says its value;
each app's route holds the definitions its routers name, and the table defines each once.

JSON is valid YAML, so the documents are rendered with the json module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
HTTPS_REDIRECT = "_temps-https"  # defined in the home's own file (`homefile`)
# An app in maintenance: its serving routers name a service with no server (Traefik answers
# 503) and the daemon's page service, both defined in the home's own file.
MAINTENANCE_SERVICE, PAGES_SERVICE = "_temps-maintenance", "_temps-pages"
MAINTENANCE_PATH = "/_temps/maintenance"  # the daemon's page of an app in maintenance
MAINTENANCE_HEADER = "X-Temps-Maintenance"
SHARED = "_"  # the first character of a shared middleware's name, and of no app's
RELEASE_PREFIX = f"{SHARED}temps-release-"
# The retries the routers share. One container: a request that could not reach it is sent
# once more. Several (Traefik's health check on): the request, or a GET answered 502, goes to
# another container, with a fixed number of attempts rather than one per container: Traefik's
# passive check takes a container out of the balance at its first failure, so each retry goes
# to one not known to have failed, and more attempts would only matter when a fourth container
# fails within the same request.
RETRY, RETRY_BALANCED = "_temps-retry", "_temps-retry-balanced"
RETRY_ATTEMPTS, RETRY_BALANCED_ATTEMPTS = 2, 4
# Above a rule's length (Traefik's default priority), below its own ACME challenge router.
REDIRECT_PRIORITY = 100_000
# A kept release's routers (skew protection): above the app's own, whose priority is their
# rule's length, and below the redirect to HTTPS, which a request naming a release passes
# through first as any other.
SKEW_PRIORITY = 90_000
SKEW_COOKIE = "temps_release"  # the cookie, and the query parameter, that name a release
SKEW_SET_COOKIE = "{cookie}={release}; Path=/; SameSite=Lax"
MAX_KEPT = 3  # kept releases per app
MAX_HSTS_SECONDS = 2 * 365 * 24 * 3600
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
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
    maintenance: bool = False  # every host answers 503 with the maintenance page
    retry_after: int = 60  # the `Retry-After` of those answers, in seconds

    def tls_router(self, host: str) -> str:
        # App names hold no "_" and host names no "_": the name is unique, and says both.
        return f"{self.app}_tls_{host.replace('.', '_')}"

    @property
    def redirect_router(self) -> str:
        return f"{self.app}_redirect"

    @property
    def hsts_middleware(self) -> str:
        """Shared by every site with the same HSTS lifetime."""
        return f"{SHARED}temps-hsts-{self.hsts_seconds}"

    @property
    def maintenance_headers(self) -> str:
        """Shared by every site in maintenance with the same `Retry-After`."""
        return f"{SHARED}temps-maintenance-{self.retry_after}"

    @property
    def maintenance_page(self) -> str:
        """The app's own: the page is the app's."""
        return f"{self.app}_maintenance"

    def maintenance_middlewares(self) -> dict[str, Middleware]:
        """What the serving routers of a site in maintenance name: the headers of a 503
        (outermost), and the page of the app asked of the daemon for its body."""
        headers = {"Retry-After": str(self.retry_after), MAINTENANCE_HEADER: "on"}
        return {
            self.maintenance_headers: {"headers": {"customResponseHeaders": headers}},
            self.maintenance_page: {
                "errors": {
                    "status": ["503"],
                    "service": PAGES_SERVICE,
                    "query": f"{MAINTENANCE_PATH}/{self.app}",
                }
            },
        }


@dataclass(frozen=True)
class Kept:
    """A replaced release still served to the requests that name it (skew protection): its
    label ("v3"), its kept containers, and whether its answers set the release cookie."""

    release: str
    server_urls: tuple[str, ...]
    cookie: bool = False


def release_middleware(release: str, retry_after: int | None = None, cookie: bool = False) -> str:
    """The middleware that answers with `X-Temps-Release: <release>` (and `Retry-After`, or
    the release cookie), shared by every app routed to a release of that label."""
    after = "" if retry_after is None else f"-retry-after-{retry_after}"
    return f"{RELEASE_PREFIX}{release}{after}{'-cookie' if cookie else ''}"


def release_headers(
    release: str, retry_after: int | None = None, cookie: bool = False
) -> dict[str, str]:
    """What `release_middleware` sends with every answer."""
    headers = {RELEASE_HEADER: release}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if cookie:
        headers["Set-Cookie"] = SKEW_SET_COOKIE.format(cookie=SKEW_COOKIE, release=release)
    return headers


def shared_retries() -> dict[str, Middleware]:
    single: Retry = {"attempts": RETRY_ATTEMPTS, "initialInterval": "20ms"}
    # Docker's proxy accepts a connection for a container that just died, then closes it:
    # Traefik answers 502 without a network error to retry on. Another container can answer
    # it (GET, HEAD: Traefik retries no other method unless told to).
    balanced: Retry = {
        "attempts": RETRY_BALANCED_ATTEMPTS,
        "initialInterval": "20ms",
        "status": ["502"],
    }
    return {RETRY: {"retry": single}, RETRY_BALANCED: {"retry": balanced}}


def retry_of(service: Dynamic) -> str:
    """The retry of the app's routers: the balanced one where Traefik's own health check
    watches several containers (of the live release, or of a canary)."""
    services = service.get("http", {}).get("services", {}).values()
    checked = any("healthCheck" in found.get("loadBalancer", {}) for found in services)
    return RETRY_BALANCED if checked else RETRY


def service_document(
    app: str,
    server_urls: Sequence[str],
    release: str,
    health_path: str | None = None,
    retry_after: int | None = None,
    cookie: bool = False,
) -> Dynamic:
    """The app's service over the slot's containers; without a server Traefik answers the
    app's hosts with 503 (with `retry_after`, telling clients when to come back). With
    `cookie`, every answer sets the release cookie (`[skew] cookie`).

    With several containers, Traefik's own health check on `health_path` takes one that
    stopped answering out of the balance, and the routers' retry middleware (`retry_of`)
    sends an idempotent request that could not reach one to another (Traefik retries no POST
    by default). One container has nowhere else to send it: its service has no health check
    of Traefik's. The load balancer passes the Host header on, Traefik's default."""
    balancer: LoadBalancer = {"servers": [{"url": url} for url in server_urls]}
    if health_path is not None and len(server_urls) > 1:
        balancer["healthCheck"] = {"path": health_path, "interval": "500ms", "timeout": "1s"}
        # Between two checks, a server whose request just failed is left out at once.
        balancer["passiveHealthCheck"] = {"failureWindow": "2s", "maxFailedAttempts": 1}
    headers = release_headers(release, retry_after, cookie)
    return {
        "http": {
            "middlewares": {
                release_middleware(release, retry_after, cookie): {
                    "headers": {"customResponseHeaders": headers}
                },
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


def router_document(site: Site, named: Sequence[str] = ()) -> Dynamic:
    """The routers that send the site's hosts to the app's service: every host on the web
    entrypoint, the redirected ones sent to HTTPS first, and one websecure router per host.
    Each serving router names the middlewares `named` (the service's release header and its
    retry: `route_document`), the websecure ones HSTS too; the retries and HSTS they name are
    defined beside them. A site in maintenance serves the maintenance page instead, from the
    same routers: leaving it or entering it is one change of the routers, and the app's
    service, which deploys move, stays as it is behind them."""
    middlewares: dict[str, Middleware] = {}
    if site.maintenance:
        middlewares.update(site.maintenance_middlewares())
        serving, service = list(middlewares), MAINTENANCE_SERVICE
    else:
        serving, service = list(named), site.app
    secure = [*serving, site.hsts_middleware] if site.hsts_seconds > 0 else serving
    routers: dict[str, Router] = {
        site.app: {
            "rule": host_rule(site.hosts),
            "service": service,
            "entryPoints": [WEB],
            "middlewares": serving,
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
            "service": service,
            "entryPoints": [WEBSECURE],
            "middlewares": secure,
            "tls": tls,
        }
    retries = shared_retries()
    middlewares.update({name: retries[name] for name in serving if name in retries})
    if secure is not serving:
        middlewares[site.hsts_middleware] = {"headers": {"stsSeconds": site.hsts_seconds}}
    http: HTTP = {"routers": routers}
    if middlewares:
        http["middlewares"] = middlewares
    return {"http": http}


def host_rule(hosts: Sequence[str]) -> str:
    return " || ".join(f"Host(`{host}`)" for host in hosts)


def skew_name(app: str, release: str) -> str:
    """The router (on the web entrypoint) and the service of a kept release: app names hold
    no "_", so no other app's objects share it."""
    return f"{app}_skew_{release}"


def skew_tls_router(app: str, release: str) -> str:
    return f"{skew_name(app, release)}_tls"


def skew_rule(hosts: Sequence[str], release: str) -> str:
    """The app's hosts, for a request that names `release` by header, cookie or query."""
    cookie = rf"(^|;\s*){SKEW_COOKIE}={release}(;|$)"
    named = (
        f"Header(`{RELEASE_HEADER}`, `{release}`) || HeaderRegexp(`Cookie`, `{cookie}`)"
        f" || Query(`{SKEW_COOKIE}`, `{release}`)"
    )
    return f"({host_rule(hosts)}) && ({named})"


def skew_document(site: Site, kept: Sequence[Kept]) -> HTTP:
    """The routers, services and release headers of the app's kept releases: a request to
    one of the app's hosts that names one goes to its kept containers, on the web entrypoint
    and, with HTTPS on, on websecure with the certificates the app's own routers obtained.
    A site in maintenance has none: its hosts answer 503 whatever a request names."""
    if site.maintenance:
        return {}
    routers: dict[str, Router] = {}
    middlewares: dict[str, Middleware] = {}
    services: dict[str, Service] = {}
    for one in kept:
        name = skew_name(site.app, one.release)
        header = release_middleware(one.release, cookie=one.cookie)
        middlewares[header] = {
            "headers": {"customResponseHeaders": release_headers(one.release, cookie=one.cookie)}
        }
        services[name] = {"loadBalancer": {"servers": [{"url": u} for u in one.server_urls]}}
        rule = skew_rule(site.hosts, one.release)
        serving = [header, RETRY]
        routers[name] = {
            "rule": rule,
            "service": name,
            "entryPoints": [WEB],
            "middlewares": serving,
            "priority": SKEW_PRIORITY,
        }
        if site.https:
            secure = [*serving, site.hsts_middleware] if site.hsts_seconds > 0 else serving
            routers[skew_tls_router(site.app, one.release)] = {
                "rule": rule,
                "service": name,
                "entryPoints": [WEBSECURE],
                "middlewares": secure,
                "priority": SKEW_PRIORITY,
                "tls": {},
            }
    if not kept:
        return {}
    middlewares[RETRY] = shared_retries()[RETRY]
    if site.https and site.hsts_seconds > 0:
        middlewares[site.hsts_middleware] = {"headers": {"stsSeconds": site.hsts_seconds}}
    return {"routers": routers, "middlewares": middlewares, "services": services}


def route_document(site: Site, service: Dynamic, kept: Sequence[Kept] = ()) -> Dynamic:
    """An app's whole route: the site's routers over the service document, naming its release
    header and its retry, with the definitions of every middleware they name (but the home's
    HTTPS redirect); and the routers of its kept releases."""
    http = service.get("http", {})
    named = [*http.get("middlewares", {}), retry_of(service)]
    routers = router_document(site, named).get("http", {})
    return {"http": merged(http, routers, skew_document(site, kept))}


def current_service(app: str, document: Dynamic) -> tuple[Dynamic, bool]:
    """A service document as this version writes it, from one an earlier version may have
    written; and whether it changed. Earlier ones held the app's routers and the middlewares
    they name, a release header and a retry of the app's own, and Traefik's default of passing
    the Host header on."""
    http = document.get("http", {})
    changed = http.pop("routers", None) is not None
    middlewares = http.get("middlewares", {})
    kept: dict[str, Middleware] = {}
    for name, found in middlewares.items():
        if name == f"{app}-release":
            headers = found.get("headers", {}).get("customResponseHeaders", {})
            after = headers.get("Retry-After")
            retry_after = None if after is None else int(after)
            kept[release_middleware(headers[RELEASE_HEADER], retry_after)] = found
        elif name.startswith(RELEASE_PREFIX):
            kept[name] = found
    if kept != middlewares:
        http["middlewares"] = kept
        changed = True
    for service in http.get("services", {}).values():
        balancer = service.get("loadBalancer")
        if balancer is not None and balancer.get("passHostHeader") is True:
            del balancer["passHostHeader"]
            changed = True
    return document, changed


def render(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, indent=2).encode() + b"\n"
