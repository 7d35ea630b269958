"""Certificates users give for their hosts instead of ordering one from the ACME CA.

A certificate is checked before it is served: a PEM chain whose first certificate names the
host (exactly, or by a wildcard one label deep), has not expired, and matches the unencrypted
PEM key given with it. It is written under the home (0600), handed to Traefik, confirmed by a
TLS handshake for the host, then recorded; the host's router stops ordering from the CA.
Removing it gives the host back to the CA.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from pipeline.errors import BeingDestroyed, InvalidInput, NotFound, SwitchFailed
from pipeline.hosting import https, sites
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Certificate, CertificateSource, CertificateState
from pipeline.sqlite.store import Store
from pipeline.traefik import homefile
from pipeline.traefik.config import confirm_certificate

MAX_PEM_CHARS = 64 * 1024


def upload(settings: Settings, store: Store, text: str, chain: str, key: str) -> Certificate:
    if settings.https is None:
        raise InvalidInput("the daemon runs without --https: there is nothing to serve it on")
    host = sites.host_name(text)
    app = owner(settings, store, host)
    if app is not None and app.destroying:
        raise BeingDestroyed(app.name)
    leaf = checked(host, chain, key)
    earlier = store.certificates.get(host)
    homefile.write_uploaded(settings, host, chain.encode(), key.encode())
    homefile.publish_home(settings, https.control_orders(settings, store))
    uploaded = Certificate(
        host=host,
        source=CertificateSource.UPLOAD,
        state=CertificateState.ISSUED,
        expires_at=leaf.not_valid_after_utc.timestamp(),
    )
    record = store.certificates.record(uploaded)
    _rehost(settings, store, app)  # the host's router stops ordering from the CA
    # Confirmed after the last change the upload makes: each change of Traefik's
    # configuration chooses again among the certificates that name the host.
    if not confirm_certificate(settings, host, leaf.public_bytes(serialization.Encoding.DER)):
        _discard(settings, store, host)
        if earlier is None:
            store.certificates.forget(host)
        else:
            store.certificates.record(earlier)
        _rehost(settings, store, app)
        raise SwitchFailed(
            f"Traefik did not serve the certificate for {host} in time; when it holds one "
            "of the CA's for the same names it may prefer that one (README: HTTPS)"
        )
    return record


def remove(settings: Settings, store: Store, text: str) -> None:
    host = sites.host_name(text)
    record = store.certificates.get(host)
    if record is None or record.source != CertificateSource.UPLOAD:
        raise NotFound(f"no uploaded certificate for {host}")
    served = _served_der(settings, host)
    _discard(settings, store, host)
    store.certificates.forget(host)  # the CA is asked for one: pending
    _rehost(settings, store, owner(settings, store, host))
    # Answered once Traefik no longer presents it: the host is the CA's (or the fallback's).
    if served is not None and not confirm_certificate(settings, host, served, present=False):
        raise SwitchFailed(f"Traefik still served the uploaded certificate for {host}")


def discard_hosts(settings: Settings, store: Store, hosts: tuple[str, ...]) -> list[str]:
    """The uploaded certificates of `hosts` (an app being destroyed) leave Traefik in one
    change of the home's file; returns the hosts that had one. The home's file is written
    even when none is left to remove: a destroy cut short between the two comes back here."""
    gone = sorted(set(hosts) & homefile.uploaded_hosts(settings))
    for host in hosts:  # a key left alone by a removal cut short goes too
        homefile.remove_uploaded(settings, host)
    homefile.publish_home(settings, https.control_orders(settings, store))
    return gone


def _served_der(settings: Settings, host: str) -> bytes | None:
    """The leaf of the host's uploaded chain as stored, in DER (None when unreadable)."""
    chain = homefile.uploaded_chain(settings, host)
    try:
        leaf = x509.load_pem_x509_certificates(chain or b"")[0]
    except (ValueError, IndexError):
        return None
    return leaf.public_bytes(serialization.Encoding.DER)


def owner(settings: Settings, store: Store, host: str) -> App | None:
    """The app served at `host` (None: the control host)."""
    if host == settings.control_host:
        return None
    for name, site in sites.every_site(settings, store).items():
        if host in site.hosts:
            return store.get_app(name)
    raise NotFound(f"no app is served at {host}: add it as a domain first")


def checked(host: str, chain: str, key: str) -> x509.Certificate:
    if len(chain) > MAX_PEM_CHARS or len(key) > MAX_PEM_CHARS:
        raise InvalidInput(f"a certificate or key over {MAX_PEM_CHARS} characters")
    try:
        certificates = x509.load_pem_x509_certificates(chain.encode())
    except ValueError as exc:
        raise InvalidInput(f"the certificate is not a PEM certificate chain ({exc})") from None
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"the key is not an unencrypted PEM private key ({exc})") from None
    leaf = certificates[0]
    if _public(leaf.public_key()) != _public(private.public_key()):
        raise InvalidInput("the key does not belong to the certificate (the first of the chain)")
    if not covers(leaf, host):
        raise InvalidInput(f"the certificate does not name {host}")
    if leaf.not_valid_after_utc.timestamp() <= time.time():
        expired = leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
        raise InvalidInput(f"the certificate expired on {expired}")
    if leaf.not_valid_before_utc > datetime.now(UTC):
        raise InvalidInput("the certificate is not valid yet")
    return leaf


def covers(certificate: x509.Certificate, host: str) -> bool:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    for name in names.value.get_values_for_type(x509.DNSName):
        name = name.lower()
        if name == host or (name.startswith("*.") and host.split(".", 1)[-1] == name[2:]):
            return True
    return False


def _public(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _discard(settings: Settings, store: Store, host: str) -> None:
    homefile.remove_uploaded(settings, host)
    homefile.publish_home(settings, https.control_orders(settings, store))


def _rehost(settings: Settings, store: Store, app: App | None) -> None:
    if app is not None:
        sites.rehost(settings, store, app)
