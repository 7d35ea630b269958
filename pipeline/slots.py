"""Moving traffic between slots: switch, drain, retire, and flipping back to a standby."""

from __future__ import annotations

import json
import threading
import time

from pipeline import metrics, routes, traefik
from pipeline.appconfig import AppConfig
from pipeline.context import Job
from pipeline.drain import wait_until_drained
from pipeline.errors import DeployError
from pipeline.models import Release
from pipeline.runtime import Slot
from pipeline.settings import Settings
from pipeline.states import ReleaseState as S
from pipeline.traffic import traffic_report


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


def drain_slot(job: Job, release: Release, timeout: float) -> None:
    if release.host_port is None:
        return
    drained, took = wait_until_drained(release.host_port, timeout)
    if drained:
        job.say(f"-----> v{release.number} drained in {took:.1f}s")
    else:
        job.say(
            f"-----> v{release.number} still busy after drain_timeout {timeout:g}s; "
            "stopping it anyway"
        )
    job.log.info(
        "deploy.drained", old=f"v{release.number}", drained=drained, seconds=round(took, 3)
    )


def retire_in_background(job: Job, release: Release) -> None:
    """Stop a drained, retired slot outside the app's lane: nothing routes to it any more.

    `job.retiring` is the stopping thread. If the daemon exits first, the container is an
    orphan at the next start and goes then.
    """

    def stop() -> None:
        try:
            stop_slot(job, release)
        except Exception:
            job.log.exception("deploy.stop_failed", old=f"v{release.number}")

    job.retiring = threading.Thread(target=stop, name=f"stop-{release.container}", daemon=True)
    job.retiring.start()


def stop_slot(job: Job, release: Release) -> None:
    if release.container:
        job.ctx.store.make_durable()  # the records that retire it outlive the container
        job.ctx.runtime.stop_and_remove(release.container, config_of(release).deploy.stop_timeout)
        job.say(f"-----> Stopped v{release.number}")
