"""Traefik, run by the daemon and steered through its file provider.

Files in `dynamic/` are written whole to `staging/` (same filesystem, outside the watched
dir) and moved in with os.replace, so Traefik never sees a half-written file; the apps'
routes share one file (`pipeline.traefik.routes`). Every switch is confirmed through
Traefik's API and a request through its data plane (`pipeline.traefik.publish`).
JSON is valid YAML, so the files are rendered with the json module.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import structlog

from pipeline.bounded_http import BadAnswer, NoAnswer, NotListening, get_head
from pipeline.errors import SwitchFailed
from pipeline.settings import Settings

log = structlog.get_logger()

TLS_FILE = "_default-tls.yml"  # app names start with a letter: no app file can clash
MARKER = "_temps-marker"  # not a valid app name: no app's router can clash
MARKER_DOMAIN = "marker.temps.invalid"
RELEASE_HEADER = "X-Temps-Release"
CONFIRM_PROBE_TIMEOUT = 2.0
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def static_config(settings: Settings) -> dict[str, Any]:
    d = settings.traefik_dir
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {"address": str(settings.http)},
            "traefik": {"address": str(settings.traefik_api)},
        },
        "api": {"insecure": True, "dashboard": False},
        "ping": {"entryPoint": "traefik"},
        "metrics": {"prometheus": {"entryPoint": "traefik", "addServicesLabels": True}},
        "providers": {
            "providersThrottleDuration": settings.traefik_throttle,
            "file": {"directory": str(settings.dynamic_dir), "watch": True},
        },
        # Idle backend connections must close fast or the old slot never drains to zero;
        # without a high per-host idle limit, connection reuse collapses under load.
        "serversTransport": {
            "maxIdleConnsPerHost": 200,
            "forwardingTimeouts": {"idleConnTimeout": settings.traefik_idle_conn_timeout},
        },
        "log": {"level": "INFO", "format": "json", "filePath": str(d / "traefik.log")},
        "accessLog": {"format": "json", "filePath": str(settings.access_log)},
    }


def route_document(
    app: str, hosts: list[str], server_urls: Sequence[str], release: str
) -> dict[str, Any]:
    """The app's router and service over the slot's containers; without a server Traefik
    answers the app's hosts with 503."""
    rule = " || ".join(f"Host(`{host}`)" for host in hosts)
    servers = [{"url": url} for url in server_urls]
    return {
        "http": {
            "routers": {
                app: {
                    "rule": rule,
                    "service": app,
                    "entryPoints": ["web"],
                    "middlewares": [f"{app}-release"],
                }
            },
            "middlewares": {
                f"{app}-release": {"headers": {"customResponseHeaders": {RELEASE_HEADER: release}}}
            },
            "services": {app: {"loadBalancer": {"servers": servers, "passHostHeader": True}}},
        }
    }


def validate_route(app: str, document: dict[str, Any]) -> None:
    """Refuse anything that would freeze Traefik's file provider for every app."""
    if not _NAME.match(app):
        raise SwitchFailed(f"invalid app name for a route: {app!r}")
    http = document["http"]
    if set(http["routers"]) != {app} or set(http["services"]) != {app}:
        raise SwitchFailed("a route file must hold exactly the app's router and service")
    rule = http["routers"][app]["rule"]
    hosts = re.findall(r"Host\(`([^`]*)`\)", rule)
    if not hosts or rule != " || ".join(f"Host(`{host}`)" for host in hosts):
        raise SwitchFailed(f"invalid router rule: {rule!r}")
    for host in hosts:
        if not _HOST.fullmatch(host):
            raise SwitchFailed(f"invalid host name in route: {host!r}")
    for server in http["services"][app]["loadBalancer"]["servers"]:
        found = re.fullmatch(r"http://127\.0\.0\.1:(\d{1,5})", server["url"])
        if not found or not 0 < int(found.group(1)) < 65536:
            raise SwitchFailed(f"invalid server URL: {server['url']!r}")


def write_atomically(staging: Path, target: Path, content: bytes, durable: bool = True) -> None:
    """Write whole, then rename over `target`; `durable` also fsyncs the file and its dir."""
    temp = staging / (target.name + ".tmp")
    with open(temp, "wb") as handle:
        handle.write(content)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temp, target)
    if not durable:
        return
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def render(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode() + b"\n"


def confirm_route(
    settings: Settings, app: str, server_urls: Sequence[str], probe_path: str, release: str
) -> float:
    """Wait until Traefik routes `app` to `server_urls`; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + settings.switch_confirm_timeout
    api = f"{settings.traefik_api.url}/api/http/services/{app}@file"
    through = f"{settings.http.url}{probe_path}"
    host = settings.hosts(app)[0]
    seen_in_api = False
    last = "no answer"
    client = _client()
    while time.monotonic() < deadline:
        try:
            if not seen_in_api:
                response = client.get(api)
                servers = response.json().get("loadBalancer", {}).get("servers", [])
                urls = [server.get("url") for server in servers]
                seen_in_api = response.status_code == 200 and sorted(urls) == sorted(server_urls)
                last = f"API shows {urls}"
            if seen_in_api:
                # The app answers this one: bounded like a health probe, headers only.
                left = max(deadline - time.monotonic(), 0.01)
                answer = get_head(through, min(CONFIRM_PROBE_TIMEOUT, left), host=host)
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


def confirm_unrouted(settings: Settings, app: str) -> bool:
    """Wait until Traefik's API shows the app's service without a server; False on timeout."""
    deadline = time.monotonic() + settings.switch_confirm_timeout
    api = f"{settings.traefik_api.url}/api/http/services/{app}@file"
    while time.monotonic() < deadline:
        try:
            response = _client().get(api)
            if response.status_code == 200 and not response.json()["loadBalancer"].get("servers"):
                return True
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    return False


@functools.cache
def _client() -> httpx.Client:
    # Shared: a new client costs ~20 ms, more than a whole confirmed switch should.
    return httpx.Client(timeout=2.0, headers={"Connection": "close"})


def marker_host(settings: Settings) -> str:
    return f"{settings.instance_id}.{MARKER_DOMAIN}"


def marker_document(settings: Settings) -> dict[str, Any]:
    """A route only this home's Traefik has: it answers its host with a redirect naming it.

    Whatever answers /ping on the API address may be another program or another home's
    Traefik; one that shows this router in its API and answers this host on the web
    entrypoint reads this home's files."""
    host = marker_host(settings)
    return {
        "http": {
            "routers": {
                MARKER: {
                    "rule": f"Host(`{host}`)",
                    "entryPoints": ["web"],
                    "middlewares": [MARKER],
                    "service": "noop@internal",
                }
            },
            "middlewares": {
                MARKER: {"redirectRegex": {"regex": ".*", "replacement": f"http://{host}/{MARKER}"}}
            },
        }
    }


def ensure_default_certificate(settings: Settings) -> None:
    """One self-signed certificate, made once: without it Traefik makes a new key per reload.

    The same file holds the home's marker route (`marker_document`)."""
    cert, key = settings.certs_dir / "default.crt", settings.certs_dir / "default.key"
    if not (cert.exists() and key.exists()):
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                f"/CN=*.{settings.domain}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        key.chmod(0o600)
    document = {
        "tls": {
            "stores": {
                "default": {"defaultCertificate": {"certFile": str(cert), "keyFile": str(key)}}
            }
        },
        **marker_document(settings),
    }
    content = render(document)
    target = settings.dynamic_dir / TLS_FILE
    if not target.exists() or target.read_bytes() != content:
        write_atomically(settings.staging_dir, target, content)
