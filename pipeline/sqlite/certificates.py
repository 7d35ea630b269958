"""The certificate state of each host served over HTTPS: one row per host."""

from __future__ import annotations

from sqlmodel import Session, col, select

from pipeline.sqlite.models import Certificate, now
from pipeline.sqlite.records import Records


class Certificates(Records):
    def by_host(self) -> dict[str, Certificate]:
        with self._session() as session:
            query = select(Certificate).order_by(col(Certificate.host))
            return {cert.host: cert for cert in session.exec(query)}

    def get(self, host: str) -> Certificate | None:
        with self._session() as session:
            return session.get(Certificate, self._key(session, host))

    @staticmethod
    def _key(session: Session, host: str) -> int:
        found = session.exec(select(Certificate.id).where(Certificate.host == host)).first()
        return found or 0  # no row has id 0

    def record(self, seen: Certificate) -> Certificate:
        """The host's certificate as it is now, written whole (a new row for a new host)."""
        with self._session() as session:
            cert = session.get(Certificate, self._key(session, seen.host)) or Certificate(host="")
            for name in ("host", "source", "state", "expires_at", "reason", "retry_at"):
                setattr(cert, name, getattr(seen, name))
            cert.updated_at = now()
            session.add(cert)
            session.commit()
            return cert

    def forget(self, host: str) -> None:
        with self._session() as session:
            cert = session.get(Certificate, self._key(session, host))
            if cert is not None:
                session.delete(cert)
                session.commit()
