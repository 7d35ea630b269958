"""The parts of Traefik's dynamic configuration temps writes, typed key by key.

They are typed dicts: the documents are the JSON Traefik reads, with no conversion on a
switch's path, and mypy still checks every key written or read. Names follow Traefik's own
(https://doc.traefik.io/traefik/reference/dynamic-configuration/file/).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class Server(TypedDict):
    url: str


class ActiveCheck(TypedDict):
    path: str
    interval: str
    timeout: str


class PassiveCheck(TypedDict):
    failureWindow: str
    maxFailedAttempts: int


class LoadBalancer(TypedDict):
    servers: list[Server]
    passHostHeader: NotRequired[bool]
    healthCheck: NotRequired[ActiveCheck]
    passiveHealthCheck: NotRequired[PassiveCheck]


class Weight(TypedDict):
    name: str
    weight: int


class Cookie(TypedDict):
    name: str
    httpOnly: bool
    sameSite: str


class Sticky(TypedDict):
    cookie: Cookie


class Weighted(TypedDict):
    services: list[Weight]
    sticky: Sticky


class Service(TypedDict, total=False):
    loadBalancer: LoadBalancer
    weighted: Weighted


class Retry(TypedDict):
    attempts: int
    initialInterval: str
    status: NotRequired[list[str]]


class Headers(TypedDict, total=False):
    customResponseHeaders: dict[str, str]
    stsSeconds: int
    customRequestHeaders: dict[str, str]


class RedirectScheme(TypedDict):
    scheme: str
    permanent: bool
    port: NotRequired[str]


class RedirectRegex(TypedDict):
    regex: str
    replacement: str


class Errors(TypedDict):
    status: list[str]
    service: str
    query: str


class Middleware(TypedDict, total=False):
    errors: Errors
    headers: Headers
    retry: Retry
    redirectScheme: RedirectScheme
    redirectRegex: RedirectRegex


class RouterTLS(TypedDict, total=False):
    certResolver: str


class Router(TypedDict):
    rule: str
    service: str
    entryPoints: list[str]
    middlewares: NotRequired[list[str]]
    priority: NotRequired[int]
    tls: NotRequired[RouterTLS]


class HTTP(TypedDict, total=False):
    routers: dict[str, Router]
    middlewares: dict[str, Middleware]
    services: dict[str, Service]


class CertificateFiles(TypedDict):
    certFile: str
    keyFile: str


class DefaultStore(TypedDict):
    defaultCertificate: CertificateFiles


class TLS(TypedDict):
    stores: dict[Literal["default"], DefaultStore]
    certificates: NotRequired[list[CertificateFiles]]


class Dynamic(TypedDict, total=False):
    """One file of the file provider: an app's service document, the route table, the
    home's own file."""

    http: HTTP
    tls: TLS


def merged(*parts: HTTP) -> HTTP:
    """The routers, middlewares and services of `parts` in one section each, later entries
    over earlier ones of the same name; a section nothing fills is left out (Traefik refuses
    an empty one)."""
    routers: dict[str, Router] = {}
    middlewares: dict[str, Middleware] = {}
    services: dict[str, Service] = {}
    for part in parts:
        routers.update(part.get("routers", {}))
        middlewares.update(part.get("middlewares", {}))
        services.update(part.get("services", {}))
    http: HTTP = {}  # in the order of the names, as Traefik's own dumps are
    if middlewares:
        http["middlewares"] = middlewares
    if routers:
        http["routers"] = routers
    if services:
        http["services"] = services
    return http
