"""The API of HTTPS certificates: every host's as the daemon last saw it, and the ones users
upload for their hosts instead of ordering one from the ACME CA (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from pipeline.hosting import uploads
from pipeline.sqlite.models import Certificate
from receiver.api.apps import Body, DaemonDep, PrincipalDep
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)


class CertificateUpload(Body):
    certificate: str  # PEM: the host's certificate first, then its chain
    key: str  # PEM, unencrypted


def certificate_view(record: Certificate) -> dict[str, Any]:
    fields = ("host", "source", "state", "expires_at", "reason", "retry_at", "updated_at")
    return {name: getattr(record, name) for name in fields}


@router.get("/certificates")
def list_certificates(daemon: DaemonDep, who: PrincipalDep) -> list[dict[str, Any]]:
    who.require_admin()
    return [certificate_view(c) for c in daemon.store.certificates.by_host().values()]


@router.put("/certificates/{host}")
def upload_certificate(
    host: str, body: CertificateUpload, daemon: DaemonDep, who: PrincipalDep
) -> dict[str, Any]:
    """Served for the host once Traefik presents it; the host's router stops ordering one."""
    who.require_admin()
    record = uploads.upload(daemon.settings, daemon.store, host, body.certificate, body.key)
    return certificate_view(record)


@router.delete("/certificates/{host}", status_code=204)
def remove_certificate(host: str, daemon: DaemonDep, who: PrincipalDep) -> Response:
    """The host goes back to a certificate from the ACME CA."""
    who.require_admin()
    uploads.remove(daemon.settings, daemon.store, host)
    return Response(status_code=204)
