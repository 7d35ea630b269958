"""The API of HTTPS certificates: every host's as the daemon last saw it, and the ones users
upload for their hosts instead of ordering one from the ACME CA (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from pipeline.hosting import uploads
from pipeline.sqlite.models import CertificateSource, CertificateState
from receiver.api.apps import Body, DaemonDep, PrincipalDep
from receiver.api.views import View
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class CertificateUpload(Body):
    certificate: str  # PEM: the host's certificate first, then its chain
    key: str  # PEM, unencrypted


class CertificateSeen(View):
    """A host's certificate as the daemon last saw it; for a host it has not seen yet (its
    router is ordering one), pending, without `retry_at` and `updated_at`."""

    source: CertificateSource
    state: CertificateState
    expires_at: float | None
    reason: str | None  # failed: why the CA refused
    retry_at: float | None
    updated_at: float | None


class CertificateView(CertificateSeen):
    host: str


@router.get("/certificates")
def list_certificates(daemon: DaemonDep, who: PrincipalDep) -> list[CertificateView]:
    who.require_admin()
    return [CertificateView.model_validate(c) for c in daemon.store.certificates.by_host().values()]


@router.put("/certificates/{host}")
def upload_certificate(
    host: str, body: CertificateUpload, daemon: DaemonDep, who: PrincipalDep
) -> CertificateView:
    """Served for the host once Traefik presents it; the host's router stops ordering one."""
    who.require_admin()
    record = uploads.upload(daemon.settings, daemon.store, host, body.certificate, body.key)
    return CertificateView.model_validate(record)


@router.delete("/certificates/{host}", status_code=204)
def remove_certificate(host: str, daemon: DaemonDep, who: PrincipalDep) -> Response:
    """The host goes back to a certificate from the ACME CA."""
    who.require_admin()
    uploads.remove(daemon.settings, daemon.store, host)
    return Response(status_code=204)
