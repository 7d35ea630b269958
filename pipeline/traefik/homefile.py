"""The home's own file in Traefik's dynamic directory: all that is not an app's route.

- The fallback certificate, made once: without a default certificate Traefik makes a new key
  at every reload. It names no app's host, since Traefik orders no ACME certificate for a
  host its default certificate covers (an earlier `*.<domain>` one is replaced).
- The marker route that proves a Traefik reads this home's files.
- The services the routers of an app in maintenance name: one with no server, for Traefik's
  503, and the daemon, which gives the page of its body.
- With HTTPS: the redirect middleware the apps' redirecting routers share, the certificates
  users uploaded (`uploaded/<host>.crt` and `.key`, the files themselves the record of them),
  and the control host's routes to the daemon's own API, git and dashboard.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from pipeline.settings import Settings
from pipeline.traefik.config import TLS_FILE, write_atomically
from pipeline.traefik.documents import (
    HTTPS_REDIRECT,
    MAINTENANCE_SERVICE,
    PAGES_SERVICE,
    RESOLVER,
    WEB,
    WEBSECURE,
    render,
)
from pipeline.traefik.dynamic import (
    HTTP,
    TLS,
    CertificateFiles,
    Dynamic,
    Middleware,
    RedirectRegex,
    RedirectScheme,
    RouterTLS,
    Service,
    merged,
)

MARKER = "_temps-marker"  # not a valid app name: no app's router can clash
MARKER_DOMAIN = "marker.temps.invalid"
FALLBACK_NAME = "default.temps.invalid"  # the certificate served when no other matches
CONTROL = "_temps-control"
PROXY_HEADER = "X-Temps-Proxy"  # names the request as one this home's Traefik forwarded


def marker_host(settings: Settings) -> str:
    return f"{settings.instance_id}.{MARKER_DOMAIN}"


def marker_document(settings: Settings) -> Dynamic:
    """A route only this home's Traefik has: it answers its host with a redirect naming it.

    Whatever answers /ping on the API address may be another program or another home's
    Traefik; one that shows this router in its API and answers this host on the web
    entrypoint reads this home's files."""
    host = marker_host(settings)
    redirect: RedirectRegex = {"regex": ".*", "replacement": f"http://{host}/{MARKER}"}
    return {
        "http": {
            "routers": {
                MARKER: {
                    "rule": f"Host(`{host}`)",
                    "entryPoints": [WEB],
                    "middlewares": [MARKER],
                    "service": "noop@internal",
                }
            },
            "middlewares": {MARKER: {"redirectRegex": redirect}},
        }
    }


def ensure_default_certificate(settings: Settings, control_orders: bool = True) -> None:
    """Make the fallback certificate if it is missing, then write the home's file."""
    cert, key = fallback_files(settings)
    for earlier in ("default.crt", "default.key"):
        (settings.certs_dir / earlier).unlink(missing_ok=True)
    if not (cert.exists() and key.exists()):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "3650", "-subj", f"/CN={FALLBACK_NAME}",
             "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        key.chmod(0o600)
    publish_home(settings, control_orders)


def fallback_files(settings: Settings) -> tuple[Path, Path]:
    return settings.certs_dir / "fallback.crt", settings.certs_dir / "fallback.key"


def publish_home(settings: Settings, control_orders: bool = True) -> bool:
    """Write the home's file when it differs from what is there; True when it was written.
    `control_orders`: the control host's router orders its certificate (not while a refused
    order waits for its retry)."""
    cert, key = fallback_files(settings)
    document = marker_document(settings)
    document["http"]["services"] = maintenance_services(settings)
    tls: TLS = {
        "stores": {"default": {"defaultCertificate": {"certFile": str(cert), "keyFile": str(key)}}}
    }
    uploads: list[CertificateFiles] = [
        {"certFile": str(crt), "keyFile": str(key)} for crt, key in uploaded_files(settings)
    ]
    if uploads:
        tls["certificates"] = uploads
    if settings.https is not None:
        parts: list[HTTP] = [document["http"], {"middlewares": https_redirect(settings)}]
        if settings.control_host:
            parts.append(control_routes(settings, control_orders)["http"])
        document["http"] = merged(*parts)
    content = render({"tls": tls, **document})
    target = settings.dynamic_dir / TLS_FILE
    if target.exists() and target.read_bytes() == content:
        return False
    write_atomically(settings.staging_dir, target, content)
    return True


def maintenance_services(settings: Settings) -> dict[str, Service]:
    return {
        MAINTENANCE_SERVICE: {"loadBalancer": {"servers": []}},
        PAGES_SERVICE: {"loadBalancer": {"servers": [{"url": settings.daemon_url}]}},
    }


def https_redirect(settings: Settings) -> dict[str, Middleware]:
    """The one middleware every redirecting router uses: to the same URL over HTTPS."""
    assert settings.https is not None
    scheme: RedirectScheme = {"scheme": "https", "permanent": True}
    if settings.https.port != 443:
        scheme["port"] = str(settings.https.port)
    return {HTTPS_REDIRECT: {"redirectScheme": scheme}}


def control_routes(settings: Settings, orders: bool) -> Dynamic:
    """The daemon's API, git and dashboard at the control host, over HTTPS only: plain HTTP
    redirects (a token must never cross the network in clear). Every request it forwards
    carries the home's proxy secret, the daemon's sign to believe its X-Forwarded-For."""
    host = settings.control_host
    rule = f"Host(`{host}`)"
    ordered = orders and host not in uploaded_hosts(settings)
    tls: RouterTLS = {"certResolver": RESOLVER} if ordered else {}
    return {
        "http": {
            "routers": {
                CONTROL: {
                    "rule": rule,
                    "entryPoints": [WEBSECURE],
                    "service": CONTROL,
                    "middlewares": [CONTROL],
                    "tls": tls,
                },
                f"{CONTROL}-http": {
                    "rule": rule,
                    "entryPoints": [WEB],
                    "service": CONTROL,
                    "middlewares": [HTTPS_REDIRECT],
                },
            },
            "middlewares": {
                CONTROL: {
                    "headers": {"customRequestHeaders": {PROXY_HEADER: proxy_secret(settings)}}
                }
            },
            "services": {CONTROL: {"loadBalancer": {"servers": [{"url": settings.daemon_url}]}}},
        }
    }


def proxy_secret(settings: Settings) -> str:
    """Made once and kept in the home (0600): the daemon reads it at start."""
    path = settings.proxy_secret_path
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        secret = secrets.token_urlsafe(32)
        write_atomically(settings.staging_dir, path, secret.encode() + b"\n")
        path.chmod(0o600)
        return secret


def uploaded_files(settings: Settings) -> list[tuple[Path, Path]]:
    directory = settings.uploaded_certs_dir
    pairs = [(crt, crt.with_suffix(".key")) for crt in sorted(directory.glob("*.crt"))]
    return [(crt, key) for crt, key in pairs if key.exists()]


def uploaded_hosts(settings: Settings) -> set[str]:
    return {crt.stem for crt, _key in uploaded_files(settings)}


def write_uploaded(settings: Settings, host: str, chain: bytes, key: bytes) -> None:
    """A host's certificate chain and key, each written whole (0600), key first: a chain
    is served only beside its key."""
    crt, key_file = _uploaded_pair(settings, host)
    write_atomically(settings.staging_dir, key_file, key)
    write_atomically(settings.staging_dir, crt, chain)
    for path in (crt, key_file):
        path.chmod(0o600)


def uploaded_chain(settings: Settings, host: str) -> bytes | None:
    try:
        return _uploaded_pair(settings, host)[0].read_bytes()
    except OSError:
        return None


def remove_uploaded(settings: Settings, host: str) -> None:
    for path in _uploaded_pair(settings, host):
        path.unlink(missing_ok=True)


def _uploaded_pair(settings: Settings, host: str) -> tuple[Path, Path]:
    directory = settings.uploaded_certs_dir
    return directory / f"{host}.crt", directory / f"{host}.key"
