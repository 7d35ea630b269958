"""The dynamic documents Traefik reads for an app, and the checks they pass first.

An app's route has two halves with two owners. The *service* (the slot's servers and the
release header) moves with deploys: switches, flips back, reconciliation. The *site* (the
host names, and the routers that match them) moves when a domain is added or removed. The
route table joins them (`pipeline.traefik.routes`), so a domain change never touches the
servers and a switch never touches the hosts, whichever comes first.

JSON is valid YAML, so the documents are rendered with the json module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import SwitchFailed

RELEASE_HEADER = "X-Temps-Release"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True)
class Site:
    """Where an app is served: its default host first, then its custom domains."""

    app: str
    hosts: tuple[str, ...]


def release_middleware(app: str) -> str:
    return f"{app}-release"


def service_document(app: str, server_urls: Sequence[str], release: str) -> dict[str, Any]:
    """The app's service over the slot's containers; without a server Traefik answers the
    app's hosts with 503."""
    servers = [{"url": url} for url in server_urls]
    return {
        "http": {
            "middlewares": {
                release_middleware(app): {
                    "headers": {"customResponseHeaders": {RELEASE_HEADER: release}}
                }
            },
            "services": {app: {"loadBalancer": {"servers": servers, "passHostHeader": True}}},
        }
    }


def router_document(site: Site) -> dict[str, Any]:
    """The routers that send the site's hosts to the app's service."""
    return {
        "http": {
            "routers": {
                site.app: {
                    "rule": host_rule(site.hosts),
                    "service": site.app,
                    "entryPoints": ["web"],
                    "middlewares": [release_middleware(site.app)],
                }
            }
        }
    }


def host_rule(hosts: Sequence[str]) -> str:
    return " || ".join(f"Host(`{host}`)" for host in hosts)


def route_document(site: Site, service: dict[str, Any]) -> dict[str, Any]:
    """An app's whole route: the site's routers over the service document."""
    http = {**service["http"], **router_document(site)["http"]}
    return {"http": {section: http[section] for section in sorted(http)}}


def validate_service(app: str, document: dict[str, Any]) -> None:
    """Refuse anything that would freeze Traefik's file provider for every app."""
    if not _NAME.match(app):
        raise SwitchFailed(f"invalid app name for a route: {app!r}")
    http = document["http"]
    if set(http) - {"middlewares", "services"}:
        raise SwitchFailed("a service document holds only the app's service and middleware")
    if set(http["services"]) != {app} or set(http["middlewares"]) != {release_middleware(app)}:
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    for server in http["services"][app]["loadBalancer"]["servers"]:
        found = re.fullmatch(r"http://127\.0\.0\.1:(\d{1,5})", server["url"])
        if not found or not 0 < int(found.group(1)) < 65536:
            raise SwitchFailed(f"invalid server URL: {server['url']!r}")


def validate_site(site: Site) -> None:
    if not _NAME.match(site.app):
        raise SwitchFailed(f"invalid app name for a route: {site.app!r}")
    if not site.hosts:
        raise SwitchFailed(f"app {site.app!r} has no host name to be served at")
    for host in site.hosts:
        if not HOST.fullmatch(host):
            raise SwitchFailed(f"invalid host name in route: {host!r}")


def validate_route(app: str, document: dict[str, Any]) -> None:
    """A whole route (`route_document`): the app's one router over its service."""
    http = document["http"]
    if set(http.get("routers", ())) != {app}:
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    rule = http["routers"][app]["rule"]
    hosts = tuple(re.findall(r"Host\(`([^`]*)`\)", rule))
    if not hosts or rule != host_rule(hosts):
        raise SwitchFailed(f"invalid router rule: {rule!r}")
    validate_site(Site(app, hosts))
    validate_service(app, {"http": {k: v for k, v in http.items() if k != "routers"}})


def render(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode() + b"\n"
