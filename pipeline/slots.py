"""Moving traffic between slots: switch, drain, retire, and flipping back to a standby."""

from __future__ import annotations

import json

from pipeline import traefik
from pipeline.appconfig import AppConfig
from pipeline.context import Job
from pipeline.drain import wait_until_drained
from pipeline.errors import DeployError
from pipeline.models import Release
from pipeline.runtime import Slot
from pipeline.settings import Settings


def hosts_of(settings: Settings, app: str) -> list[str]:
    return [f"{app}.{settings.domain}"]


def route_to(job: Job, slot: Slot, label: str, probe_path: str) -> float:
    """Point the app's route at `slot` and confirm it; on failure the old route is restored."""
    settings = job.ctx.settings
    app = job.app.name
    document = traefik.route_document(app, hosts_of(settings, app), slot.url, label)
    before = traefik.read_route(settings, app)
    traefik.publish_route(settings, app, document)
    try:
        return traefik.confirm_route(settings, app, slot.url, probe_path, label)
    except DeployError:
        traefik.restore_route(settings, app, before)
        raise


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


def stop_slot(job: Job, release: Release) -> None:
    if release.container:
        job.ctx.runtime.stop_and_remove(release.container, config_of(release).deploy.stop_timeout)
        job.say(f"-----> Stopped v{release.number}")
