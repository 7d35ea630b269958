"""Moving traffic between slots: the switch, and the traffic report around it."""

from __future__ import annotations

import json
import time

from pipeline import metrics
from pipeline.appconfig import AppConfig
from pipeline.context import Job
from pipeline.docker.runtime import Slot
from pipeline.errors import DeployError
from pipeline.settings import Settings
from pipeline.sqlite.models import Release
from pipeline.states import ReleaseState as S
from pipeline.traefik import config as traefik
from pipeline.traefik import routes
from pipeline.traefik.traffic import traffic_report


def hosts_of(settings: Settings, app: str) -> list[str]:
    return [f"{app}.{settings.domain}"]


def route_to(job: Job, slot: Slot, label: str, probe_path: str) -> float:
    """Point the app's route at `slot` and confirm it; on failure the old route is restored."""
    settings = job.ctx.settings
    app = job.app.name
    document = traefik.route_document(app, hosts_of(settings, app), slot.url, label)
    before = routes.read_route(settings, app)
    routes.publish_route(settings, app, document)
    try:
        took = traefik.confirm_route(settings, app, slot.url, probe_path, label)
        metrics.switch_seconds.observe(took)
        return took
    except DeployError:
        routes.restore_route(settings, app, before)
        raise


def unroute(job: Job) -> None:
    """Keep the app's hosts, with no server behind them: Traefik answers 503 meanwhile."""
    settings, app = job.ctx.settings, job.app.name
    document = traefik.route_document(app, hosts_of(settings, app), None, job.label)
    routes.publish_route(settings, app, document)
    if not traefik.confirm_unrouted(settings, app):
        job.say("-----> Traefik did not confirm the app's route without a server; going on")


def switch_started(job: Job) -> float | None:
    for event in reversed(job.ctx.store.events(job.release_id)):
        if event.state == S.SWITCHING:
            return event.at
    return None


def report_traffic(job: Job) -> None:
    """Store what Traefik served for the app from the switch until now, and tell the pusher."""
    start = switch_started(job)
    if start is None:
        return
    hosts = set(hosts_of(job.ctx.settings, job.app.name))
    report = traffic_report(job.ctx.settings.access_log, hosts, start, time.time())
    job.release = job.ctx.store.update_release(job.release_id, traffic=json.dumps(report.to_dict()))
    job.say(f"-----> {report.summary()}")


def slot_of(release: Release) -> Slot | None:
    if release.container is None or release.host_port is None:
        return None
    return Slot(release.container, release.host_port)


def config_of(release: Release) -> AppConfig:
    return AppConfig.from_dict(json.loads(release.config))
