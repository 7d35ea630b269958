"""Skew protection: a release replaced stays reachable, for a while, by the requests that name it.

A browser that loaded a page from v3 asks a moment later for v3's assets and API; once v4 is
live they would reach v4, which may have neither. With `[skew] keep` above 0 in the new live
release's temps.toml, `replicas` web containers of the release it replaced keep running
(the others retire as ever), and a router per kept release sends a request for one of the
app's hosts that names it (`X-Temps-Release: v3`, the cookie `temps_release=v3`, or
`?temps_release=v3`) to them, above the app's own router. A request that names no release,
or one no longer kept, reaches the live release as any other.

Until when a release is kept is in its record (`KeptRecord`): a daemon that restarts routes
the ones still kept with their time left, and retires the others. When the time is over the
release's routers go first (confirmed in Traefik's API), then its containers drain and stop
through `retire_in_background`, as every leaving container does. An app keeps at most
`MAX_KEPT` releases; keeping one more lets the oldest go at once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable

import structlog

from pipeline.app.config import AppConfig
from pipeline.context import Context, Deploy
from pipeline.errors import TempsError
from pipeline.release import formation
from pipeline.release.records import Entry, KeptRecord
from pipeline.release.states import ReleaseState
from pipeline.runtime import Instance
from pipeline.sqlite.models import Release
from pipeline.steps.retire import Leaving, retire_in_background
from pipeline.traefik import publish
from pipeline.traefik.documents import MAX_KEPT, Kept

log = structlog.get_logger()

# Kept releases change from a deploy's thread (a release replaced) and from the expiry's (one
# let go): each change publishes the app's whole set, read under this lock.
_changing = threading.Lock()


def keep_standby(live: Deploy, standby: Release, config: AppConfig) -> None:
    """From the switch on, while the release `live` replaced waits in standby for the bake
    window, every web container of it is routed by its id: a page it served a moment before
    the switch still reaches it. Kept until `keep` after the switch; the window's end keeps
    `replicas` of them (`keep_replaced`)."""
    slot = formation.slot_of(standby)
    if config.skew.keep <= 0 or slot is None:
        return
    _keep(live, standby, slot.instances, time.time() + config.skew.keep)


def keep_replaced(
    live: Deploy, previous: Release, config: AppConfig, fresh: bool = True
) -> list[Leaving]:
    """The release `live` replaced, kept for skew protection as `config` (`live`'s
    temps.toml) asks; returns its containers that leave now (all of them when none is kept).

    A release kept since the switch (`keep_standby`) keeps `replicas` of its containers until
    the same time; `fresh` keeps one that is not kept yet (no bake window: the switch is now),
    else it is not kept (its time ran out within the window)."""
    leaving = Leaving.every(previous)
    skew = config.skew
    slot = formation.slot_of(previous)
    already = live.ctx.store.get_release(previous.pk).kept
    if skew.keep <= 0 or slot is None or (already is None and not fresh):
        return leaving
    until = already.until if already is not None else time.time() + skew.keep
    kept = slot.instances[: skew.replicas]
    if already is not None:
        serving = {entry.container for entry in already.web}
        kept = tuple(i for i in slot.instances if i.container in serving)[: skew.replicas]
    if not kept or not _keep(live, previous, kept, until):
        return leaving
    names = {instance.container for instance in kept}
    return [one for one in leaving if one.container not in names]


def standby_leaving(live: Deploy, standby: Release | None) -> list[Leaving]:
    """The containers of a standby that a newer deploy retires early (`retire_standby`):
    those its kept time does not keep (the live release's `[skew]`); none without one."""
    if standby is None:
        return []
    current = live.ctx.store.live_release(live.app)
    config = current.config if current is not None else standby.config
    return keep_replaced(live, standby, config, fresh=False)


def unkeep(live: Deploy, release: Release) -> None:
    """A standby that serves as the live release again (a flip back, a rollback that takes
    it over) is no longer kept: its routers by id go (its containers stay, live now)."""
    if live.ctx.store.get_release(release.pk).kept is None:
        return
    with _changing:
        live.ctx.store.set_kept(release.pk, None)
        gone = _publish(live.ctx, live.app.name)
    live.log.info("skew.unkept", release=f"v{release.number}")
    _retire(live.ctx, live.app.name, gone)


def _keep(live: Deploy, release: Release, kept: Iterable[Instance], until: float) -> bool:
    """Record `kept` as the release's containers kept until `until`, and route them by its
    id (confirmed); False, and nothing kept, when Traefik does not confirm."""
    ctx, label = live.ctx, f"v{release.number}"
    kept = tuple(kept)
    record = KeptRecord(until=until, web=tuple(Entry.web(instance) for instance in kept))
    with _changing:
        before = ctx.store.get_release(release.pk).kept
        ctx.store.set_kept(release.pk, record)
        try:
            gone = _publish(ctx, live.app.name)
        except TempsError as error:
            ctx.store.set_kept(release.pk, before)
            live.log.error("skew.keep_failed", kept=label, error=str(error))
            live.say(f"-----> {label} could not be kept for skew protection: {error}")
            return False
    names = sorted(instance.container for instance in kept)
    live.log.info("skew.kept", kept=label, until=round(until, 3), containers=names)
    live.say(
        f"-----> {label} kept for {max(until - time.time(), 0):.0f}s for the pages it served "
        f"(requests naming it reach {', '.join(names)})"
    )
    _retire(ctx, live.app.name, gone)
    return True


def let_go_expired(ctx: Context, now: float | None = None) -> int:
    """Every kept release whose time is over: out of Traefik (confirmed), then retired.
    Returns how many were let go. An app being destroyed is left to its destroy."""
    now = time.time() if now is None else now
    let_go = 0
    for app_id, kept in ctx.store.kept_releases().items():
        expired = [release for release in kept if _record(release).until <= now]
        if not expired:
            continue
        app = ctx.store.get_app_by_id(app_id).name
        if app in ctx.destroying:
            continue
        with _changing:
            for release in expired:
                ctx.store.set_kept(release.pk, None)
            try:
                gone = _publish(ctx, app)
            except TempsError:
                for release in expired:  # still routed: tried again at the next check
                    ctx.store.set_kept(release.pk, release.kept)
                raise
        # A standby's containers stay for its bake window, which retires them.
        _retire(ctx, app, [r for r in expired if r.state != ReleaseState.STANDBY] + gone)
        let_go += len(expired)
    return let_go


def follow_kept(ctx: Context) -> int:
    """Every kept release whose containers no longer all serve where its record says (one
    stopped, or came back at another address): routed to those that serve, or let go when
    none does, so that a request naming it never meets a dead server for long. Kept
    containers are not started again: a kept release is a courtesy to old pages, and the
    live release answers them as well. Returns how many releases changed."""
    changed = 0
    for app_id, kept in ctx.store.kept_releases().items():
        app = ctx.store.get_app_by_id(app_id).name
        if app in ctx.destroying:
            continue
        listing = {c.name: c for c in ctx.runtime.containers(app)}
        for release in kept:
            record = _record(release)
            port = release.config.port
            found = (listing.get(entry.container) for entry in record.web)
            serving = [i for c in found if c is not None and (i := c.instance(port)) is not None]
            if [i.url for i in serving] == list(record.slot.urls):
                continue
            if not _follow(ctx, app, release, serving):
                continue
            gone = {entry.container for entry in record.web} - {i.container for i in serving}
            for name in sorted(gone & set(listing)):
                # Stopped (or restarting): it must not come back to serve unrouted.
                stopped = listing[name]
                ports = tuple(stopped.ports.values())
                leaving = Leaving.of(release, name, ports, stopped.address)
                say = functools.partial(ctx.journal.write, release.pk)
                retire_in_background(ctx, app, leaving, say)
            changed += 1
    return changed


def _follow(ctx: Context, app: str, release: Release, serving: list[Instance]) -> bool:
    """Route the kept `release` to `serving` only, or let it go without; False when its
    record changed meanwhile (let go, say), and nothing was done."""
    label = f"v{release.number}"
    record = _record(release)
    with _changing:
        if ctx.store.get_release(release.pk).kept != record:
            return False
        if serving:
            web = tuple(Entry.web(instance) for instance in serving)
            ctx.store.set_kept(release.pk, KeptRecord(until=record.until, web=web))
        else:
            ctx.store.set_kept(release.pk, None)
        try:
            over = _publish(ctx, app)
        except TempsError:
            ctx.store.set_kept(release.pk, record)
            raise
    log.warning("skew.kept_followed", app=app, release=label, serving=[i.url for i in serving])
    if not serving:
        ctx.journal.write(release.pk, f"-----> {label} no longer runs: no longer kept")
    _retire(ctx, app, over)
    return True


def still_kept(ctx: Context, now: float | None = None) -> dict[str, tuple[Kept, ...]]:
    """At start-up: each app's kept releases whose time is not over, as Traefik routes them
    (the others are let go: their containers are orphans then)."""
    now = time.time() if now is None else now
    found: dict[str, tuple[Kept, ...]] = {}
    for app_id, kept in ctx.store.kept_releases().items():
        current = [release for release in kept if _record(release).until > now]
        for release in kept:
            if release not in current:
                ctx.store.set_kept(release.pk, None)
        if current:
            found[ctx.store.get_app_by_id(app_id).name] = _routed(current[-MAX_KEPT:])
    return found


def kept_containers(releases: Iterable[Release]) -> set[str]:
    """The containers these kept releases keep running."""
    return {entry.container for release in releases for entry in _record(release).web}


def _publish(ctx: Context, app: str) -> list[Release]:
    """Route the app's kept releases as its records say, the newest `MAX_KEPT`; the older
    ones are no longer kept, and returned (call with `_changing` held)."""
    found = ctx.store.get_app(app)
    kept = ctx.store.kept_releases(found).get(found.pk, [])
    over = kept[:-MAX_KEPT] if len(kept) > MAX_KEPT else []
    routed = kept[len(over) :]
    publish.keep(ctx.settings, app, _routed(routed))
    for release in over:
        ctx.store.set_kept(release.pk, None)
    return over


def _routed(releases: Iterable[Release]) -> tuple[Kept, ...]:
    return tuple(Kept(f"v{r.number}", _record(r).slot.urls, r.config.skew.cookie) for r in releases)


def _retire(ctx: Context, app: str, releases: list[Release]) -> None:
    """The kept containers of `releases`, no longer routed: drained, then stopped; each
    release's own log says so."""
    for release in releases:
        say = functools.partial(ctx.journal.write, release.pk)
        log.info("skew.let_go", app=app, release=f"v{release.number}")
        say(f"-----> v{release.number} is no longer kept for skew protection: retiring it")
        for entry in _record(release).web:
            instance = entry.instance()
            leaving = Leaving.of(release, entry.container, (instance.port,), instance.address)
            retire_in_background(ctx, app, leaving, say)


def _record(release: Release) -> KeptRecord:
    assert release.kept is not None
    return release.kept
