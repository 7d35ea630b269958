"""The switch and the hand-over: Traefik moves to the new slot, which goes live as its
strategy hands over (`pipeline.deploy.strategies`). And the traffic report around it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline import metrics
from pipeline.app.config import AppConfig
from pipeline.context import Deploy
from pipeline.errors import DiskFull, RecordsBusy, TempsError
from pipeline.git import repo as gitrepo
from pipeline.release import formation
from pipeline.release.records import TrafficRecord
from pipeline.release.states import ReleaseState as S
from pipeline.runtime import Slot
from pipeline.series.switch import LEAD_SECONDS, SwitchGraph
from pipeline.sqlite.models import Release, ReleaseSource
from pipeline.steps import processes
from pipeline.steps.health import probe
from pipeline.steps.skew import unkeep
from pipeline.traefik import publish, routes
from pipeline.traefik.traffic import traffic_report

STANDBY_TRIES = 3  # probes of a standby container before it is taken for not answering


@dataclass(frozen=True)
class Target:
    """The slot a switch routes to, and the config it runs with."""

    slot: Slot
    config: AppConfig


# A strategy's hand-over: the deploy, its target, and the live release it replaces.
HandOver = Callable[[Deploy, Target, Release | None], None]


def take_over_standby(deploy: Deploy, standby: Release | None) -> Target | None:
    """A rollback inside the bake window: the previous slot is still up, idle, so no boot.

    It passed a full gate before; one passing probe per container, taken before anything is
    written, proves it still answers, and the release goes from queued straight to the
    switch. A probe that fails is tried again, up to `STANDBY_TRIES` in all: one answer late
    on a busy host must not cost the rollback its standby. A standby that does not answer is
    left to `retire_standby`, and its image boots again instead.
    """
    if standby is None or deploy.release.rollback_of != standby.number:
        return None
    slot = formation.slot_of(standby)
    assert slot is not None
    config = standby.config
    check = config.healthcheck
    for url in slot.urls:
        for _ in range(STANDBY_TRIES):
            result = probe(url + check.path, check.timeout)
            if result.ok:
                break
        if not result.ok:
            deploy.say(
                f"-----> v{standby.number} is on standby but health {check.path} gave "
                f"{result.detail}: booting its image instead"
            )
            return None
    deploy.move_other(standby, S.RETIRED)
    unkeep(deploy, standby)  # its containers serve the rollback now, under the rollback's id
    deploy.say(
        f"-----> v{standby.number} is still up (bake window): switching back without a boot\n"
        f"health {check.path}: {result.detail}"
    )
    return Target(slot, config)


def switch(deploy: Deploy, target: Target) -> None:
    # The slot is recorded here too: a taken-over standby slot comes to switching unrecorded.
    first = target.slot.first
    deploy.move(S.SWITCHING, container=first.container, host_port=first.port)
    deploy.ctx.store.set_details(deploy.id, slot=formation.slot_record(target.slot))
    config = target.config
    took = route_to(deploy, target.slot, deploy.label, config.healthcheck.path, config.skew.cookie)
    deploy.log.info("traefik.switched", seconds=round(took, 4))
    try:
        deploy.say(
            f"-----> Traefik routes {deploy.app.name} to {deploy.label} "
            f"(confirmed in {took * 1000:.0f} ms)"
        )
    except (DiskFull, RecordsBusy) as error:
        # The new slot serves from here: a line that cannot be recorded must not fail the
        # deploy, which would stop the slot Traefik now routes to. The hand-over records.
        deploy.log.error("deploy.log_unwritten", error=str(error))


def route_to(
    deploy: Deploy, slot: Slot, label: str, probe_path: str, cookie: bool = False
) -> float:
    """Point the app's route at `slot` and confirm it; on failure the old route is restored.
    With `cookie`, its answers set the release cookie (`[skew] cookie`)."""
    settings, app = deploy.ctx.settings, deploy.app.name
    took = publish.route(settings, app, slot.urls, label, probe_path, cookie)
    metrics.switch_seconds.observe(took)
    return took


def hand_over(deploy: Deploy, target: Target, how: HandOver) -> None:
    """Make the new slot the live one, as its strategy hands over. What fails here never
    undoes the switch: the new slot serves, and the pusher is told what did not finish."""
    try:
        # The new release goes live before the previous one leaves: a crash in between leaves
        # two live records, and reconciliation keeps the newest, which is what Traefik serves.
        previous = deploy.ctx.store.live_release(deploy.app)
        processes.replace(deploy, previous, deploy.current())  # off the previous record: re-read
        how(deploy, target, deploy.ctx.store.live_release(deploy.app))
        report_traffic(deploy)
    except TempsError as error:
        deploy.log.error("deploy.finish_failed", error=str(error))
        deploy.say(f"-----> {deploy.label} serves, but finishing the deploy failed: {error}")


def go_live(deploy: Deploy, slot: Slot) -> None:
    for instance in slot.instances:
        deploy.ctx.runtime.keep_running(instance.container)
    deploy.move(S.LIVE)
    if deploy.release.source == ReleaseSource.WEBHOOK:
        # A fetched commit is on no branch here: main names what runs, as a push's does, so
        # that `[preview]` and `temps build show` read the commit that runs.
        gitrepo.set_main(deploy.ctx.settings.repo_path(deploy.app.name), deploy.release.commit)
    deploy.say(f"-----> {deploy.label} is live at {deploy.ctx.settings.app_url(deploy.app.name)}")


def report_traffic(deploy: Deploy) -> None:
    """Store what Traefik served for the app from the switch until now, with its graph from
    a little before the canary or the switch, and tell the pusher."""
    events = deploy.ctx.store.events(deploy.id)
    started = [e.at for e in events if e.state == S.SWITCHING]
    if not started:
        return
    settings, now = deploy.ctx.settings, time.time()
    hosts = set(routes.site_of(settings, deploy.app.name).hosts)
    since = min([started[-1] - LEAD_SECONDS] + [e.at for e in events if e.state == S.CANARY])
    graph = SwitchGraph(since, started[-1], now, servers_of(deploy))
    report = traffic_report(settings.access_log, hosts, started[-1], now, graph)
    record = TrafficRecord.model_validate({**report.to_dict(), "series": graph.record()})
    deploy.ctx.store.add_traffic(deploy.id, record)
    deploy.say(f"-----> {report.summary()}")


def servers_of(deploy: Deploy, releases: int = 6) -> dict[str, str]:
    """The release behind each server URL among the app's newest releases: the one switched
    to and those it replaced. A URL two of them had (an address the bridge gave again)
    names the newer."""
    named: dict[str, str] = {}
    for release in reversed(deploy.ctx.store.releases(deploy.app, releases)):
        slot = formation.slot_of(release)
        for url in slot.urls if slot is not None else ():
            named[url] = f"v{release.number}"
    return named
