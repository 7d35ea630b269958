"""Traefik, run by the daemon and steered through its file provider.

Files in `dynamic/` are written whole to `staging/` (same filesystem, outside the watched
dir) and moved in with os.replace, so Traefik never sees a half-written file; the apps'
routes share one file (`pipeline.traefik.routes`), made of the documents of
`pipeline.traefik.documents`. Every switch is confirmed through Traefik's API and a request
through its data plane (`pipeline.traefik.publish`).
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import structlog

from pipeline import disk
from pipeline.bounded_http import BadAnswer, NoAnswer, NotListening, get_head
from pipeline.errors import SwitchFailed
from pipeline.polling import poll_until
from pipeline.settings import Settings
from pipeline.traefik.documents import RELEASE_HEADER, RESOLVER, WEB, WEBSECURE
from pipeline.traefik.dynamic import Dynamic, Router

log = structlog.get_logger()

TLS_FILE = "_default-tls.yml"  # app names start with a letter: no app file can clash
CONFIRM_PROBE_TIMEOUT = 2.0
API_POLL_SECONDS = 0.005  # the API reflects a change within a few ms: a switch waits on it
CERTIFICATE_POLL_SECONDS = 0.02  # a TLS handshake each time
DIAL_TIMEOUT = "2s"  # for a connection to a server (static_config says why)
# What the access log keeps of each request: what the traffic reports, the canary's judgement
# and the series read, and what a person reading it needs. Traefik writes some thirty fields
# by default; each costs its encoding at every request.
ACCESS_LOG_FIELDS = (
    "StartUTC",
    "Duration",
    "RequestHost",
    "RequestMethod",
    "RequestPath",
    "RequestProtocol",
    "ClientHost",
    "DownstreamStatus",
    "OriginStatus",
    "RouterName",
    "ServiceURL",
    "RetryAttempts",
)
# Lines a request hands to the access log's writer instead of writing its own under a lock:
# the writer goes on writing as they come (a line is in the file as soon as it is written, not
# when the buffer fills), and a burst of requests no longer waits in line for the file.
ACCESS_LOG_BUFFER = 100


def static_config(settings: Settings) -> dict[str, object]:
    entry_points = {WEB: {"address": str(settings.http)}}
    if settings.https is not None:
        entry_points[WEBSECURE] = {"address": str(settings.https)}
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {**entry_points, "traefik": {"address": str(settings.traefik_api)}},
        **_certificate_resolvers(settings),
        "api": {"insecure": True, "dashboard": False},
        "ping": {"entryPoint": "traefik"},
        **_metrics(settings),
        "providers": {
            "providersThrottleDuration": settings.traefik_throttle,
            "file": {"directory": str(settings.dynamic_dir), "watch": True},
        },
        # Idle backend connections must close fast or the old slot never drains to zero;
        # without a high per-host idle limit, connection reuse collapses under load.
        "serversTransport": {
            "maxIdleConnsPerHost": 200,
            # A server that takes a connection in no more than 2 s (a Swarm node that is
            # gone) is given up, and the retry sends the request to another: Traefik's
            # default waits 30 s.
            "forwardingTimeouts": {
                "idleConnTimeout": settings.traefik_idle_conn_timeout,
                "dialTimeout": DIAL_TIMEOUT,
            },
        },
        "log": {"level": "INFO", "format": "json", "filePath": str(settings.traefik_log)},
        "accessLog": {
            "format": "json",
            "filePath": str(settings.access_log),
            "bufferingSize": ACCESS_LOG_BUFFER,
            "fields": {"defaultMode": "drop", "names": dict.fromkeys(ACCESS_LOG_FIELDS, "keep")},
        },
    }


def _metrics(settings: Settings) -> dict[str, object]:
    """Traefik's Prometheus metrics, when asked for: every request then passes through their
    counters and histograms, per entrypoint and per service."""
    if not settings.traefik_metrics:
        return {}
    return {"metrics": {"prometheus": {"entryPoint": "traefik", "addServicesLabels": True}}}


def _certificate_resolvers(settings: Settings) -> dict[str, object]:
    """The ACME resolver the websecure routers name: HTTP-01 answered on the web entrypoint and
    TLS-ALPN-01 on websecure (the CA offers both, Traefik's ACME client picks one);
    certificates kept under the home (0600), renewed by Traefik by the CA's lifetime."""
    if settings.https is None:
        return {}
    acme = {
        "email": settings.acme_email,
        "caServer": settings.acme_ca,
        "storage": str(settings.acme_storage),
        "certificatesDuration": settings.acme_cert_hours,
        # ECDSA P-256 rather than Traefik's default RSA 4096: a TLS handshake signs with the
        # key, 3.5 ms of CPU each with RSA 4096 here, a fraction of that with P-256.
        "keyType": "EC256",
        "httpChallenge": {"entryPoint": WEB},
        "tlsChallenge": {},
    }
    return {"certificatesResolvers": {RESOLVER: {"acme": acme}}}


def write_atomically(staging: Path, target: Path, content: bytes, durable: bool = True) -> None:
    """Write whole, then rename over `target`; `durable` also fsyncs the file and its dir.

    A write the disk has no room for raises DiskFull naming it, with `target` as it was
    (Traefik goes on with what it had) and no partial file left in `staging`."""
    temp = staging / (target.name + ".tmp")
    with disk.writing(target.parent):
        try:
            with open(temp, "wb") as handle:
                handle.write(content)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
        except OSError:
            temp.unlink(missing_ok=True)
            raise
    os.replace(temp, target)
    if not durable:
        return
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def confirm_route(
    settings: Settings,
    app: str,
    server_urls: Sequence[str],
    probe_path: str,
    release: str,
    through: bool = True,
) -> float:
    """Wait until Traefik routes `app` to `server_urls`, in its API and then (`through`) in a
    probe of the app's default host through it; returns the seconds it took. An app in
    maintenance is confirmed in the API alone: its hosts answer with its page."""
    started = time.monotonic()
    deadline = started + settings.switch_confirm_timeout
    api = f"{settings.traefik_api.url}/api/http/services/{app}@file"
    # With HTTPS on, plain HTTP may answer with a redirect: the route is probed where it serves.
    probe = f"{settings.served_url}{probe_path}"
    host = settings.default_host(app)
    seen_in_api = False
    last = "no answer"
    client = api_client()
    while time.monotonic() < deadline:
        try:
            if not seen_in_api:
                response = client.get(api)
                servers = response.json().get("loadBalancer", {}).get("servers", [])
                urls = [server.get("url") for server in servers]
                seen_in_api = response.status_code == 200 and sorted(urls) == sorted(server_urls)
                last = f"API shows {urls}"
                if seen_in_api and not through:
                    return time.monotonic() - started
            if seen_in_api:
                # The app answers this one: bounded like a health probe, headers only.
                left = max(deadline - time.monotonic(), 0.01)
                answer = get_head(probe, min(CONFIRM_PROBE_TIMEOUT, left), host=host)
                answered = answer.headers.get(RELEASE_HEADER.lower())
                if answered == release and 200 <= answer.status < 300:
                    return time.monotonic() - started
                last = f"probe through Traefik got HTTP {answer.status} from {answered}"
        except (httpx.HTTPError, ValueError, NoAnswer, NotListening, BadAnswer) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.005)
    raise SwitchFailed(
        f"Traefik did not confirm the new route within "
        f"{settings.switch_confirm_timeout:g}s ({last})"
    )


def confirm_split(settings: Settings, app: str, document: Dynamic) -> bool:
    """Wait until Traefik's API shows the app's service split as `document` says: the
    weights, and each half's servers; False on timeout."""
    services = document["http"]["services"]
    wanted = {(s["name"], s["weight"]) for s in services[app]["weighted"]["services"]}

    def weights(seen: dict[str, Any]) -> bool:
        shown = seen["weighted"]["services"]
        return {(s["name"].split("@")[0], s["weight"]) for s in shown} == wanted

    def servers(urls: list[str]) -> Callable[[dict[str, Any]], bool]:
        return lambda seen: sorted(s["url"] for s in seen["loadBalancer"]["servers"]) == urls

    halves = {
        name: sorted(server["url"] for server in service["loadBalancer"]["servers"])
        for name, service in services.items()
        if name != app and "loadBalancer" in service
    }
    return _api_shows(settings, f"services/{app}@file", weights) and all(
        _api_shows(settings, f"services/{name}@file", servers(urls))
        for name, urls in halves.items()
    )


def confirm_unrouted(settings: Settings, app: str) -> bool:
    """Wait until Traefik's API shows the app's service without a server; False on timeout."""
    return _api_shows(
        settings, f"services/{app}@file", lambda seen: not seen["loadBalancer"].get("servers")
    )


def confirm_routers(
    settings: Settings, routers: Mapping[str, Router], gone: Iterable[str] = ()
) -> bool:
    """Wait until Traefik's API shows each of `routers` with its rule, TLS, middlewares and
    service, and none of the routers named `gone`; False on timeout."""

    def essentials(router: Mapping[str, Any]) -> tuple[object, ...]:
        # The API adds the TLS options it applies ("default"): compare what was set. The
        # middlewares count too (HSTS turned on changes nothing else), each by its name
        # without the provider the API may add to it.
        middlewares = tuple(str(m).split("@", 1)[0] for m in router.get("middlewares") or ())
        tls = router.get("tls", {}).get("certResolver")
        service = str(router.get("service")).split("@", 1)[0]
        return router.get("rule"), "tls" in router, tls, middlewares, service

    def shows(router: Router) -> Callable[[dict[str, Any]], bool]:
        wanted = essentials(router)
        return lambda seen: seen.get("status") == "enabled" and essentials(seen) == wanted

    return all(
        _api_shows(settings, f"routers/{name}@file", shows(router))
        for name, router in routers.items()
    ) and all(_api_lacks(settings, f"routers/{name}@file") for name in gone)


def confirm_withdrawn(settings: Settings, app: str, routers: Iterable[str]) -> bool:
    """Wait until Traefik's API shows none of the app's `routers` and not its service;
    False on timeout."""
    return confirm_routers(settings, {}, routers) and _api_lacks(settings, f"services/{app}@file")


def confirm_certificate(settings: Settings, host: str, der: bytes, present: bool = True) -> bool:
    """Wait until the websecure entrypoint presents the certificate `der` for `host` (with
    `present` False: until it presents another one); False on timeout."""
    assert settings.https is not None
    address = ("127.0.0.1" if settings.https.host in ("0.0.0.0", "::") else settings.https.host,
               settings.https.port)  # fmt: skip
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # compared, not trusted

    def presented() -> bool:
        try:
            with (
                socket.create_connection(address, timeout=2.0) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                served = tls.getpeercert(binary_form=True)
        except OSError:
            return False
        return (served == der) == present

    return poll_until(presented, settings.switch_confirm_timeout, CERTIFICATE_POLL_SECONDS)


def _api_lacks(settings: Settings, path: str) -> bool:
    api = f"{settings.traefik_api.url}/api/http/{path}"

    def gone() -> bool:
        try:
            return api_client().get(api).status_code == 404
        except httpx.HTTPError:
            return False

    return poll_until(gone, settings.switch_confirm_timeout, API_POLL_SECONDS)


def _api_shows(settings: Settings, path: str, check: Callable[[dict[str, Any]], bool]) -> bool:
    api = f"{settings.traefik_api.url}/api/http/{path}"

    def shown() -> bool:
        try:
            response = api_client().get(api)
            return response.status_code == 200 and check(response.json())
        except (httpx.HTTPError, ValueError, KeyError, AttributeError):
            return False

    return poll_until(shown, settings.switch_confirm_timeout, API_POLL_SECONDS)


@functools.cache
def api_client() -> httpx.Client:
    """The one client for Traefik's API, plain HTTP on loopback. Shared: a new client costs
    ~20 ms, more than a whole confirmed switch should; and without a TLS context, since the
    first one loads the CA bundle, a quarter of a second of every daemon start."""
    return httpx.Client(timeout=2.0, headers={"Connection": "close"}, verify=False)
