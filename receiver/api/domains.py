"""The API of an app's domains: the host names it is served at besides its default one, and
the certificate of each host when HTTPS is on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from pipeline.hosting import sites
from pipeline.sqlite.models import Certificate
from pipeline.traefik.documents import MAX_HSTS_SECONDS, Site
from receiver.api.apps import Body, DaemonDep, PrincipalDep, app_for
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class DomainRequest(Body):
    host: str


class HttpsRequest(Body):
    redirect: bool | None = None
    hsts_seconds: Annotated[int, Field(ge=0, le=MAX_HSTS_SECONDS)] | None = None


def domains_view(daemon: Daemon, site: Site) -> dict[str, Any]:
    """The app's hosts, each with its certificate as last seen (None without HTTPS), and
    its HTTPS choices."""
    certificates = daemon.store.certificates.by_host() if site.https else {}
    app = daemon.store.get_app(site.app)
    return {
        "app": site.app,
        "default": site.hosts[0],
        "domains": list(site.hosts[1:]),
        "https": site.https,
        "redirect": app.https_redirect,
        "hsts_seconds": app.hsts_seconds,
        "hosts": [
            {"host": host, "certificate": certificate_view(certificates.get(host), site.https)}
            for host in site.hosts
        ],
    }


def certificate_view(record: Certificate | None, https: bool) -> dict[str, Any] | None:
    if not https:
        return None
    if record is None:  # not seen by the watch yet: its router orders one
        return {"source": "acme", "state": "pending", "expires_at": None, "reason": None}
    view = {k: getattr(record, k) for k in ("source", "state", "expires_at", "reason")}
    return {**view, "retry_at": record.retry_at, "updated_at": record.updated_at}


@router.get("/apps/{name}/domains")
def list_domains(name: str, daemon: DaemonDep, who: PrincipalDep) -> dict[str, Any]:
    app = app_for(daemon, who, name)
    return domains_view(daemon, sites.site_of(daemon.settings, daemon.store, app))


@router.post("/apps/{name}/domains", status_code=201)
def add_domain(
    name: str, body: DomainRequest, daemon: DaemonDep, who: PrincipalDep
) -> dict[str, Any]:
    """Served at once, without a deploy; a host another app has is a 409 naming it."""
    who.require_admin()  # a host is claimed across apps, like the tokens that may deploy them
    app = app_for(daemon, who, name)
    return domains_view(daemon, sites.add_domain(daemon.settings, daemon.store, app, body.host))


@router.patch("/apps/{name}/https")
def set_https(
    name: str, body: HttpsRequest, daemon: DaemonDep, who: PrincipalDep
) -> dict[str, Any]:
    """Redirect plain HTTP to HTTPS once a host has its certificate (on by default), and
    HSTS; applied at once to the app's hosts."""
    who.require_admin()
    app = app_for(daemon, who, name)
    site = sites.set_https(daemon.settings, daemon.store, app, body.redirect, body.hsts_seconds)
    return domains_view(daemon, site)


@router.delete("/apps/{name}/domains/{host}")
def remove_domain(name: str, host: str, daemon: DaemonDep, who: PrincipalDep) -> dict[str, Any]:
    who.require_admin()
    app = app_for(daemon, who, name)
    return domains_view(daemon, sites.remove_domain(daemon.settings, daemon.store, app, host))
