"""The API of an app's domains: the host names it is served at besides its default one, and
the certificate of each host when HTTPS is on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field

from pipeline.hosting import sites
from pipeline.sqlite.models import Certificate, CertificateSource, CertificateState
from pipeline.traefik.documents import MAX_HSTS_SECONDS, Site
from receiver.api.apps import Body, DaemonDep, PrincipalDep, app_for, app_to_change
from receiver.api.certificates import CertificateSeen
from receiver.api.views import View
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class DomainRequest(Body):
    host: str


class HttpsRequest(Body):
    redirect: bool | None = None
    hsts_seconds: Annotated[int, Field(ge=0, le=MAX_HSTS_SECONDS)] | None = None


class HostView(View):
    host: str
    certificate: CertificateSeen | None  # None without HTTPS


class DomainsView(View):
    """The app's hosts, the default one first, and its HTTPS choices."""

    app: str
    default: str
    domains: list[str]  # besides the default
    https: bool
    redirect: bool
    hsts_seconds: int
    hosts: list[HostView]


def domains_view(daemon: Daemon, site: Site) -> DomainsView:
    """The app's hosts, each with its certificate as last seen (None without HTTPS), and
    its HTTPS choices."""
    certificates = daemon.store.certificates.by_host() if site.https else {}
    app = daemon.store.get_app(site.app)
    return DomainsView(
        app=site.app,
        default=site.hosts[0],
        domains=list(site.hosts[1:]),
        https=site.https,
        redirect=app.https_redirect,
        hsts_seconds=app.hsts_seconds,
        hosts=[
            HostView(host=host, certificate=certificate_view(certificates.get(host), site.https))
            for host in site.hosts
        ],
    )


def certificate_view(record: Certificate | None, https: bool) -> CertificateSeen | None:
    if not https:
        return None
    if record is None:  # not seen by the watch yet: its router orders one
        return CertificateSeen(
            source=CertificateSource.ACME,
            state=CertificateState.PENDING,
            expires_at=None,
            reason=None,
            retry_at=None,
            updated_at=None,
        )
    return CertificateSeen.model_validate(record)


@router.get("/apps/{name}/domains")
def list_domains(name: str, daemon: DaemonDep, who: PrincipalDep) -> DomainsView:
    app = app_for(daemon, who, name)
    return domains_view(daemon, sites.site_of(daemon.settings, daemon.store, app))


@router.post("/apps/{name}/domains", status_code=201)
def add_domain(name: str, body: DomainRequest, daemon: DaemonDep, who: PrincipalDep) -> DomainsView:
    """Served at once, without a deploy; a host another app has is a 409 naming it."""
    who.require_admin()  # a host is claimed across apps, like the tokens that may deploy them
    app = app_to_change(daemon, who, name)
    return domains_view(daemon, sites.add_domain(daemon.settings, daemon.store, app, body.host))


@router.patch("/apps/{name}/https")
def set_https(name: str, body: HttpsRequest, daemon: DaemonDep, who: PrincipalDep) -> DomainsView:
    """Redirect plain HTTP to HTTPS once a host has its certificate (on by default), and
    HSTS; applied at once to the app's hosts."""
    who.require_admin()
    app = app_to_change(daemon, who, name)
    site = sites.set_https(daemon.settings, daemon.store, app, body.redirect, body.hsts_seconds)
    return domains_view(daemon, site)


@router.delete("/apps/{name}/domains/{host}")
def remove_domain(name: str, host: str, daemon: DaemonDep, who: PrincipalDep) -> DomainsView:
    who.require_admin()
    app = app_to_change(daemon, who, name)
    return domains_view(daemon, sites.remove_domain(daemon.settings, daemon.store, app, host))
