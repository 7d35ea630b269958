"""At start-up, make Docker and Traefik agree with the records (the source of truth)."""

from __future__ import annotations

import json

import structlog

from pipeline import traefik
from pipeline.appconfig import AppConfig
from pipeline.context import Context
from pipeline.errors import TempsError
from pipeline.states import TERMINAL
from pipeline.states import ReleaseState as S

log = structlog.get_logger()


def reconcile(ctx: Context) -> None:
    live_containers: set[str] = set()
    for app in ctx.store.list_apps():
        for release in ctx.store.releases(app, limit=1000):
            state = S(release.state)
            if state in TERMINAL or state == S.LIVE:
                continue
            if state == S.STANDBY:
                # The bake window died with the daemon; the live release keeps serving.
                ctx.journal.transition(release, S.RETIRED)
                continue
            # The daemon stopped while this deploy ran; nobody will finish it now.
            ctx.journal.transition(
                release,
                S.INTERRUPTED,
                failed_step=str(state),
                failure_reason=f"daemon restarted while the deploy was {state}",
            )
            log.warning(
                "reconcile.interrupted", app=app.name, release=f"v{release.number}", step=str(state)
            )
        live = ctx.store.live_release(app)
        if live is None or live.container is None:
            continue
        live_containers.add(live.container)
        try:
            _republish(ctx, app.name, live.container, live.number, live.config)
        except TempsError as exc:
            log.error("reconcile.route_failed", app=app.name, error=str(exc))
    try:
        for container in ctx.runtime.containers():
            if container["name"] not in live_containers:
                ctx.runtime.stop_and_remove(container["name"], 0)
                log.info("reconcile.removed_container", container=container["name"])
    except TempsError as exc:
        log.error("reconcile.docker_unavailable", error=str(exc))


def _republish(ctx: Context, app: str, container: str, number: int, config: str) -> None:
    port = AppConfig.from_dict(json.loads(config)).port
    host_port = ctx.runtime.host_port(container, port)
    if host_port is None:
        log.error("reconcile.live_container_missing", app=app, container=container)
        return
    url = f"http://127.0.0.1:{host_port}"
    hosts = [f"{app}.{ctx.settings.domain}"]
    document = traefik.route_document(app, hosts, url, f"v{number}")
    if traefik.read_route(ctx.settings, app) != traefik.render(document):
        traefik.publish_route(ctx.settings, app, document)
        log.info("reconcile.route_rewritten", app=app, url=url)
