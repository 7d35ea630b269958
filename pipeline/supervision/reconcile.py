"""At start-up, make Docker and Traefik agree with the records, the source of truth.

- A release caught in `draining` had its switch confirmed: it is what Traefik serves, so it
  becomes live. Any other release caught mid-flight is marked `interrupted` with its step.
- Of several live records (a crash between the two state changes of a hand-over) the newest
  wins; a standby slot's bake window died with the daemon, so it retires.
- Every app's route is rewritten from its live release, at the port Docker publishes now
  (a web stopped on purpose keeps answering 503). What of the live formation is not
  running is the supervisor's: the daemon runs its first check before it serves.
- Containers of this home that no live release owns, nor a release kept for skew protection,
  are drained, then removed, in the background: a standby whose window died with the daemon
  may still finish requests.
- An app being destroyed (`pipeline.deploy.destroy`) is left to its destroy, which resumes
  once the daemon has started: it is not routed again, and its containers wait for it.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from pipeline.context import Context
from pipeline.errors import TempsError
from pipeline.git import repo as gitrepo
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.release.states import IN_FLIGHT, Failure
from pipeline.release.states import ReleaseState as S
from pipeline.release.transition import transition
from pipeline.runtime import Container, Slot
from pipeline.sqlite.models import App, Release, ReleaseSource
from pipeline.statuses.report import report
from pipeline.steps.retire import Leaving, retire_in_background
from pipeline.steps.skew import kept_containers
from pipeline.supervision import stopping
from pipeline.supervision.stopping import RETRY_AFTER_SECONDS
from pipeline.traefik import publish, routes

log = structlog.get_logger()
# For a container no release names (a release command's, say): drain and stop bounds.
ORPHAN_DRAIN_SECONDS = 10.0
ORPHAN_STOP_SECONDS = 10.0


def reconcile(ctx: Context) -> None:
    owned: set[str] = set()
    try:
        # One listing for every app: an inspect per app made a 100-app restart a second slower.
        containers = {c.name: c for c in ctx.runtime.containers()}
    except TempsError as exc:
        log.error("reconcile.docker_unavailable", error=str(exc))
        containers = None
    # One read of what may need settling, for every app: a query per app made a 500-app
    # restart seconds slower.
    unsettled = ctx.store.releases_in(S.LIVE, S.DRAINING, S.STANDBY, *IN_FLIGHT)
    # Releases kept for skew protection keep their containers (those whose time ran out were
    # let go before: `skew.still_kept`).
    kept = ctx.store.kept_releases()
    for app in ctx.store.list_apps():
        if app.name in ctx.destroying:
            containers = _leave_to_destroy(ctx, app.name, owned, containers)
            continue
        live = settle_records(ctx, app, unsettled.get(app.pk, []))
        owned.update(kept_containers(kept.get(app.pk, [])))
        if live is None:
            # Never live (a first deploy cut short): a route could only point at an orphan.
            routes.restore_route(ctx.settings, app.name, None)
        elif live.container is not None:
            owned.update(formation.containers_of(live))
            if containers is None:
                continue  # the engine is away: the routes Traefik has are the best guess
            try:
                if WEB in app.stopped:
                    keep_stopped(ctx, app, live)
                else:
                    republish(ctx, app, live, containers)
            except TempsError as exc:
                log.error("reconcile.route_failed", app=app.name, error=str(exc))
    if containers is None:
        return
    # The records that make these containers orphans must outlive them.
    ctx.store.make_durable()
    try:
        remove_orphans(ctx, [c for name, c in containers.items() if name not in owned])
    except TempsError as exc:
        log.error("reconcile.docker_unavailable", error=str(exc))


def _leave_to_destroy(
    ctx: Context, app: str, owned: set[str], containers: dict[str, Container] | None
) -> dict[str, Container] | None:
    """The containers of an app being destroyed are its destroy's: counted as owned. The
    listing, or None when they cannot be told apart (no orphan is removed then)."""
    if containers is None:
        return None
    try:
        owned.update(container.name for container in ctx.runtime.containers(app))
    except TempsError as exc:
        log.error("reconcile.docker_unavailable", error=str(exc))
        return None
    return containers


def settle_records(ctx: Context, app: App, releases: list[Release]) -> Release | None:
    """Finish or close every release left mid-flight (of `releases`, the app's live and
    unsettled ones, newest first); return the one live release."""
    lives = []
    for release in releases:
        state = S(release.state)
        if state == S.LIVE:
            lives.append(release)
        elif state == S.DRAINING:
            promoted = promote(ctx, app, release)
            report(ctx, app, promoted)  # its commit was left pending
            lives.append(promoted)
        elif state == S.STANDBY:
            transition(ctx.store, app.name, release, S.RETIRED)
        elif state in IN_FLIGHT:
            reason = f"the daemon stopped while the deploy was {state}"
            failure = Failure(reason, state)
            stopped = transition(ctx.store, app.name, release, S.INTERRUPTED, failure=failure)
            report(ctx, app, stopped)  # its commit was left pending
            log.warning(
                "reconcile.interrupted", app=app.name, release=f"v{release.number}", step=str(state)
            )
    for older in lives[1:]:
        transition(ctx.store, app.name, older, S.RETIRED)
    return lives[0] if lives else None


def promote(ctx: Context, app: App, release: Release) -> Release:
    """Finish what the crash cut short after a confirmed switch: live, restartable, on main."""
    if release.container:
        ctx.runtime.keep_running(release.container)
    promoted = transition(ctx.store, app.name, release, S.LIVE)
    if release.source in (ReleaseSource.PUSH, ReleaseSource.WEBHOOK):
        # The push that carried it was cut off before its ref update (the deploy of a
        # delivery, before it set main); main names what runs.
        gitrepo.set_main(ctx.settings.repo_path(app.name), release.commit)
    log.info("reconcile.promoted", app=app.name, release=f"v{release.number}")
    return promoted


def republish(ctx: Context, app: App, live: Release, containers: dict[str, Container]) -> None:
    """The live slot's running containers, where Docker has them now (a container started
    again while the daemon was down may have a new address)."""
    config = live.config
    recorded = formation.slot_of(live)
    assert recorded is not None
    running = []
    for instance in recorded.instances:
        container = containers.get(instance.container)
        now = container.instance(config.port) if container is not None else None
        if now is None:
            log.error(
                "reconcile.live_container_missing", app=app.name, container=instance.container
            )
        else:
            running.append(now)
    if not running:
        return
    slot = Slot(tuple(running))
    if slot != recorded:
        first = slot.first
        ctx.store.set_details(live.pk, host_port=first.port, slot=formation.slot_record(slot, live))
    label = f"v{live.number}"
    path, cookie = config.healthcheck.path, config.skew.cookie
    if publish.is_routed(ctx.settings, app.name, slot.urls, label, path, cookie=cookie):
        return
    # Like a switch: confirmed through Traefik, the route it had put back if it does not.
    publish.route(ctx.settings, app.name, slot.urls, label, path, cookie)
    log.info("reconcile.route_rewritten", app=app.name, urls=list(slot.urls))


def keep_stopped(ctx: Context, app: App, live: Release) -> None:
    """A web stopped on purpose answers 503 with `Retry-After`, whatever the route was."""
    label = f"v{live.number}"
    if not publish.is_routed(ctx.settings, app.name, (), label, "/", RETRY_AFTER_SECONDS):
        stopping.unroute(ctx.settings, app.name, label)


def remove_orphans(ctx: Context, orphans: list[Container]) -> None:
    """Traefik may have routed to them until the routes were rewritten a moment ago."""
    for container in orphans:
        leaving, release = leaving_of(ctx, container)
        app = ctx.store.get_app_by_id(release.app_id).name if release else container.name
        retire_in_background(ctx, app, leaving, _log_of(ctx, leaving.release_id))
        log.info("reconcile.removing_container", container=container.name)


def leaving_of(ctx: Context, container: Container) -> tuple[Leaving, Release | None]:
    """A container found in a listing on its way out, where Docker has it now, bounded by
    the drain and stop timeouts of the release that names it, if one does (an orphan's when
    none does: a release command's container, say); and that release."""
    ports = tuple(container.ports.values())
    release = ctx.store.release_with_container(container.name)
    leaving = Leaving.of(release, container.name, ports, container.address) if release else None
    if leaving is None:
        leaving = Leaving(
            container.name,
            ports,
            ORPHAN_DRAIN_SECONDS,
            ORPHAN_STOP_SECONDS,
            container.name,
            address=container.address,
        )
    return leaving, release


def _log_of(ctx: Context, release_id: int | None) -> Callable[[str], None]:
    """Where an orphan's drain is told: its own release's log, if a release names it."""

    def say(text: str) -> None:
        if release_id is not None:
            ctx.journal.write(release_id, text)

    return say
