"""HTTPS for the apps' hosts: the state of each host's certificate, kept in the records from
what Traefik's resolver did, and each app's routers moved when it changes.

- A host with no certificate yet is `pending`: its websecure router orders one.
- Issued (found in Traefik's ACME store): its expiry is recorded, renewals move it, and plain
  HTTP to the host now redirects to HTTPS.
- Refused (Traefik logged the CA's error): `failed` with that reason, the owner notified; its
  router stops ordering (a CA limits failed validations: every reload would order again) and
  the host keeps being served over HTTP. After `acme_retry_seconds` it is asked for again.
  A refused renewal keeps the certificate that is still valid, and is reported the same way.
"""

from __future__ import annotations

import time
from typing import TypedDict, Unpack

import structlog

from pipeline.app.sealing import Sealer
from pipeline.errors import TempsError
from pipeline.hosting import sites
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Certificate, CertificateSource, CertificateState
from pipeline.sqlite.store import Store
from pipeline.steps import notify
from pipeline.supervision.periodic import Periodic
from pipeline.traefik import certificates, homefile

log = structlog.get_logger()
ISSUED, FAILED, PENDING = CertificateState.ISSUED, CertificateState.FAILED, CertificateState.PENDING


class Seen(TypedDict, total=False):
    """What the daemon saw of an ordered certificate besides its state."""

    expires_at: float | None
    reason: str | None
    retry_at: float | None


class CertificateWatch(Periodic):
    name = "certificates"

    def __init__(self, settings: Settings, store: Store, sealer: Sealer, interval: float = 1.0):
        super().__init__(interval)
        self.settings = settings
        self.store = store
        self.sealer = sealer
        # Refusals logged before this start were recorded by the daemon that saw them.
        try:
            self._offset = settings.traefik_log.stat().st_size
        except FileNotFoundError:
            self._offset = 0

    def start(self) -> None:
        if self.settings.https is not None:
            super().start()

    def check(self) -> None:
        """One look at Traefik's store and log; the routers of the hosts whose certificate
        changed are rewritten (an app's site, or the home's file for the control host)."""
        now = time.time()
        owners = self._owners()
        records = self.store.certificates.by_host()
        changed: set[str] = set()
        refused, self._offset = certificates.refusals(self.settings.traefik_log, self._offset)
        for refusal in refused:
            for host in refusal.hosts:
                if host in owners and self._refuse(records.get(host), host, refusal.reason, now):
                    self._tell(owners[host], host, refusal.reason)
                    changed.add(host)
        records = self.store.certificates.by_host()
        found = certificates.issued(self.settings.acme_storage)
        for host in owners:
            if self._settle(records.get(host), host, found, now):
                changed.add(host)
        for host in set(records) - set(owners):
            self.store.certificates.forget(host)  # the domain was removed
        for name in sorted({self._owner_name(owners[host]) for host in changed}):
            self._rehost(owners, name)

    def _owners(self) -> dict[str, App | None]:
        """Every host served over HTTPS and the app it belongs to (None: the control host)."""
        apps = {app.name: app for app in self.store.list_apps()}
        owners: dict[str, App | None] = {
            host: apps[name]
            for name, site in sites.every_site(self.settings, self.store).items()
            for host in site.hosts
        }
        if self.settings.control_host:
            owners[self.settings.control_host] = None
        return owners

    @staticmethod
    def _owner_name(app: App | None) -> str:
        return app.name if app is not None else ""

    def _refuse(self, record: Certificate | None, host: str, reason: str, now: float) -> bool:
        if record is not None and record.source == CertificateSource.UPLOAD:
            return False
        retry_at = now + self.settings.acme_retry_seconds
        if record is not None and record.state == ISSUED:  # a renewal: the old one still serves
            self._record(host, ISSUED, expires_at=record.expires_at, reason=reason)
            return True
        self._record(host, FAILED, reason=reason, retry_at=retry_at)
        log.warning("certificates.refused", host=host, reason=reason)
        return True

    def _settle(
        self,
        record: Certificate | None,
        host: str,
        found: dict[str, certificates.Issued],
        now: float,
    ) -> bool:
        """Record an issued (or renewed) certificate, or a refused host whose retry is due;
        True when the app's routers must change."""
        if record is not None and record.source == CertificateSource.UPLOAD:
            return False
        issued = found.get(host)
        if issued is not None:
            if record is None or record.expires_at != issued.expires_at:
                self._record(host, ISSUED, expires_at=issued.expires_at)
                log.info("certificates.issued", host=host, expires_at=issued.expires_at)
            return record is None or record.state != ISSUED
        if record is None:
            self._record(host, PENDING)
            return False
        if record.state == FAILED and (record.retry_at or 0.0) <= now:
            self._record(host, PENDING)
            return True
        return False

    def _record(self, host: str, state: CertificateState, **seen: Unpack[Seen]) -> None:
        found = Certificate(host=host, source=CertificateSource.ACME, state=state, **seen)
        self.store.certificates.record(found)

    def _tell(self, app: App | None, host: str, reason: str) -> None:
        if app is not None:  # the control host's failures are in the log and the API
            notify.send_certificate_failed(self.sealer, app, host, reason)

    def _rehost(self, owners: dict[str, App | None], name: str) -> None:
        if not name:
            homefile.publish_home(self.settings, control_orders(self.settings, self.store))
            return
        app = next(app for app in owners.values() if app is not None and app.name == name)
        try:
            sites.rehost(self.settings, self.store, app)
        except TempsError as exc:
            log.error("certificates.rehost_failed", app=name, error=str(exc))


def control_orders(settings: Settings, store: Store) -> bool:
    """Whether the control host's router orders its certificate: not while a refused order
    waits for its retry."""
    if not settings.control_host:
        return False
    record = store.certificates.get(settings.control_host)
    return record is None or sites.orders(record, time.time())
