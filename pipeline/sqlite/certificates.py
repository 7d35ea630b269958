"""The certificate state of each host served over HTTPS: one row per host."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from pipeline.sqlite.models import Certificate, CertificateSource, CertificateState, now


class Certificates:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def by_host(self) -> dict[str, Certificate]:
        with self._session() as session:
            query = select(Certificate).order_by(col(Certificate.host))
            return {cert.host: cert for cert in session.exec(query)}

    def get(self, host: str) -> Certificate | None:
        with self._session() as session:
            return session.exec(select(Certificate).where(Certificate.host == host)).first()

    def record(
        self,
        host: str,
        source: CertificateSource,
        state: CertificateState,
        *,
        expires_at: float | None = None,
        reason: str | None = None,
        retry_at: float | None = None,
    ) -> Certificate:
        """The host's certificate as it is now, written whole (a new row for a new host)."""
        with self._session() as session:
            cert = session.exec(select(Certificate).where(Certificate.host == host)).first()
            cert = cert or Certificate(host=host, source=source, state=state)
            cert.source, cert.state = source, state
            cert.expires_at, cert.reason, cert.retry_at = expires_at, reason, retry_at
            cert.updated_at = now()
            session.add(cert)
            session.commit()
            return cert

    def forget(self, host: str) -> None:
        with self._session() as session:
            cert = session.exec(select(Certificate).where(Certificate.host == host)).first()
            if cert is not None:
                session.delete(cert)
                session.commit()
