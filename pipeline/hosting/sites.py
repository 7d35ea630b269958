"""Where apps are served: every app at `<app>.<domain>`, and at the custom domains added to it.

A host name belongs to one app at a time: a custom domain is unique across apps (the
records hold it), and none may take the default host of another app. Changing an app's
domains moves its routers in Traefik, confirmed, without a deploy; the servers behind them
do not move, so the hosts already served keep being answered throughout.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from pipeline.errors import Conflict, InvalidInput, NotFound, SwitchFailed
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Certificate, CertificateSource, CertificateState
from pipeline.sqlite.store import Store
from pipeline.traefik import publish
from pipeline.traefik.documents import HOST, Site

# Domain changes of all apps one at a time: each publishes the site it has just read.
_changing = threading.Lock()


def site_of(settings: Settings, store: Store, app: App) -> Site:
    hosts = (settings.default_host(app.name), *store.domains.of(app))
    return _site(settings, app, hosts, store.certificates.by_host())


def every_site(settings: Settings, store: Store) -> dict[str, Site]:
    domains, certificates = store.domains.by_app(), store.certificates.by_host()
    return {
        app.name: _site(
            settings,
            app,
            (settings.default_host(app.name), *domains.get(app.pk, ())),
            certificates,
        )
        for app in store.list_apps()
    }


def _site(
    settings: Settings, app: App, hosts: tuple[str, ...], certificates: dict[str, Certificate]
) -> Site:
    """With HTTPS on, every host has a websecure router; it orders a certificate unless the
    host has one of the user's, or the CA refused it and its retry is not due; plain HTTP
    redirects once the host's certificate is issued (unless the app turned that off)."""
    site = Site(
        app.name,
        hosts,
        maintenance=app.in_maintenance,
        retry_after=settings.maintenance_retry_after,
    )
    if settings.https is None:
        return site
    now = time.time()
    records = {host: certificates[host] for host in hosts if host in certificates}
    issued = {h for h, c in records.items() if c.state == CertificateState.ISSUED}
    return replace(
        site,
        https=True,
        acme=frozenset(h for h in hosts if h not in records or orders(records[h], now)),
        redirected=frozenset(issued if app.https_redirect else ()),
        hsts_seconds=app.hsts_seconds,
    )


def orders(certificate: Certificate, now: float) -> bool:
    """Whether the host's router orders a certificate."""
    if certificate.source == CertificateSource.UPLOAD:
        return False
    waiting = certificate.state == CertificateState.FAILED
    return not waiting or (certificate.retry_at or 0.0) <= now


def host_name(text: str) -> str:
    """A custom domain as the records keep it: lowercase, no trailing dot, RFC 1123."""
    host = text.strip().lower().removesuffix(".")
    if host.startswith("*."):
        raise InvalidInput(
            f"{text!r}: a wildcard certificate needs a DNS-01 challenge, which temps does not "
            "run; add each host name instead"
        )
    if not HOST.fullmatch(host) or "." not in host:
        raise InvalidInput(
            f"invalid host name {text!r}: use a fully qualified name of letters, digits, '-' "
            "and '.', labels of at most 63 characters, 253 in all"
        )
    if _is_address(host):
        raise InvalidInput(f"{text!r} is an IP address: a domain must be a host name")
    if host.endswith(".invalid"):  # RFC 2606; the daemon's own marker route lives there
        raise InvalidInput(f"{text!r}: names under .invalid are reserved")
    return host


def refuse_taken(settings: Settings, store: Store, host: str) -> None:
    """A host that is some app's default host, or another app's domain, is taken."""
    if host == settings.control_host:
        raise Conflict(f"{host} is the control host of temps itself")
    owner = store.domains.owner(host)
    if owner is not None:
        raise Conflict(f"{host} is already a domain of app {owner.name!r}")
    name, _, rest = host.partition(".")
    if rest == settings.domain:
        try:
            store.get_app(name)
        except NotFound:
            return
        raise Conflict(f"{host} is the default host of app {name!r}")


def add_domain(settings: Settings, store: Store, app: App, text: str) -> Site:
    host = host_name(text)

    def add() -> None:
        refuse_taken(settings, store, host)
        store.domains.add(app, host)

    return _change(settings, store, app, add, lambda: store.domains.remove(app, host))


def remove_domain(settings: Settings, store: Store, app: App, text: str) -> Site:
    host = host_name(text)
    remove, add = store.domains.remove, store.domains.add
    return _change(settings, store, app, lambda: remove(app, host), lambda: add(app, host))


def set_https(
    settings: Settings, store: Store, app: App, redirect: bool | None, hsts_seconds: int | None
) -> Site:
    """The app's choices for its HTTPS hosts (None: unchanged), served at once."""
    before = {"https_redirect": app.https_redirect, "hsts_seconds": app.hsts_seconds}
    wanted = {"https_redirect": redirect, "hsts_seconds": hsts_seconds}
    changes = {key: value for key, value in wanted.items() if value is not None}
    return _change(
        settings,
        store,
        app,
        lambda: store.update_app(app.name, **changes),
        lambda: store.update_app(app.name, **before),
    )


def set_maintenance(settings: Settings, store: Store, app: App, on: bool) -> Site:
    """Put the app in maintenance or take it out, in one change of its routers, confirmed:
    the servers behind them do not move. Asking for the state it is in changes nothing."""
    if app.in_maintenance == on:
        return site_of(settings, store, app)
    since = app.maintenance_since
    site = _change(
        settings,
        store,
        app,
        lambda: store.update_app(app.name, maintenance_since=time.time() if on else None),
        lambda: store.update_app(app.name, maintenance_since=since),
    )
    store.series.mark(app, "maintenance", "maintenance on" if on else "maintenance off")
    return site


def rehost(settings: Settings, store: Store, app: App) -> Site:
    """Publish the app's site as the records have it now (its certificates changed)."""
    return _change(settings, store, app, lambda: None, lambda: None)


def _change(
    settings: Settings, store: Store, app: App, do: Callable[[], object], undo: Callable[[], object]
) -> Site:
    """Change the records, then serve the app's site as they have it; when Traefik does not
    confirm it, the records change back (and Traefik keeps the site it had)."""
    with _changing:
        do()
        site = site_of(settings, store, store.get_app(app.name))
        try:
            publish.rehost(settings, site)
        except SwitchFailed:
            undo()
            raise
    return site


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
