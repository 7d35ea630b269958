"""A deploy, as a story: build, boot beside the live slot, gate, switch, drain, retire.

Every step persists its state before its side effect. A failure at any step stops the new
slot, leaves the live one serving, and records why; the pusher sees the same reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog

from pipeline.appconfig import AppConfig, load_toml
from pipeline.context import Context, Job
from pipeline.docker.runtime import Limits, Slot
from pipeline.dockerfile import images_named, is_image_id
from pipeline.errors import (
    BuildFailed,
    DeployError,
    InvalidInput,
    ReleaseCommandFailed,
    TempsError,
)
from pipeline.git import repo as gitrepo
from pipeline.git.fetch import FetchLimits, fetch_commit
from pipeline.health import probe, wait_until_healthy
from pipeline.retire import Leaving, drain_and_stop, drain_slot, retire_in_background
from pipeline.slots import config_of, report_traffic, route_to, slot_of, unroute
from pipeline.sqlite.models import Release
from pipeline.states import ReleaseState as S

log = structlog.get_logger()
LOG_TAIL_LINES = 20
# recreate waits this long at most for a standby that drains and stops in the background.
RETIREMENT_WAIT_SECONDS = 3600.0


def run_deploy(ctx: Context, release_id: int) -> Job:
    release = ctx.store.get_release(release_id)
    app = ctx.store.get_app_by_id(release.app_id)
    job = Job(ctx, app, release, log.bind(app=app.name, release=f"v{release.number}"))
    previous = ctx.store.live_release(app)
    standby = ctx.store.standby_release(app)
    job.log.info("deploy.started", commit=release.commit[:12], source=release.source)
    try:
        slot = take_over_standby(job, standby)
        if slot is None:
            retire_standby(job, standby)
            if release.image is None:
                build(job)
            config = resolve_config(job)
            release_phase(job, config)
            if job.release.strategy == "recreate":
                stop_previous(job, previous)
                previous = None  # already stopped: nothing left to drain or retire
            slot = boot(job, config)
            gate(job, config, slot)
        else:
            config = config_of(job.release)
        switch(job, config, slot)
    except DeployError as error:
        fail(job, error)
    except TempsError as error:
        fail(job, DeployError(str(error)))
    else:
        # The new slot serves now: what follows completes the move and never undoes it.
        try:
            hand_over(job, config, slot, previous)
        except TempsError as error:
            job.log.error("deploy.finish_failed", error=str(error))
            job.say(f"-----> {job.label} serves, but finishing the deploy failed: {error}")
    job.log.info("deploy.finished", state=job.release.state)
    return job


def build(job: Job) -> None:
    ctx = job.ctx
    job.release = ctx.journal.transition(job.release, S.BUILDING)
    repo = ctx.settings.repo_path(job.app.name)
    commit = job.release.commit
    if job.release.source == "webhook":
        fetch_upstream(job, repo)
    config = _read_config(repo, commit, json.loads(job.app.settings))
    tag = ctx.runtime.image_tag(job.app.name, commit)
    job.release = ctx.store.update_release(
        job.release_id, config=json.dumps(config.to_dict()), image=tag
    )
    if ctx.runtime.has_image(tag):
        job.say(f"-----> Reusing image {tag} built for {commit[:12]}")
        return
    refuse_other_apps_images(job, gitrepo.read_file(repo, commit, "Dockerfile") or b"")
    job.say(f"-----> Building {tag}")
    with ctx.build_slots:
        # The image is labelled with its app only (what pruning selects by): Docker's classic
        # builder, the one its API runs, turns every build label into a step of its own with
        # an intermediate container, 0.1 s each here. The commit is in the tag, and an image
        # serves many releases (rollbacks, config changes), so the release and commit labels
        # are the containers'.
        labels = {"temps.app": job.app.name}
        settings = ctx.settings
        ctx.runtime.build(
            tag,
            gitrepo.stream_tar(repo, commit),
            labels,
            job.say,
            settings.build_timeout,
            settings.build_memory_mb,
        )


def refuse_other_apps_images(job: Job, dockerfile: bytes) -> None:
    """An app builds on public base images and its own, never on another app's."""
    for image in images_named(dockerfile.decode("utf-8", "replace")):
        if is_image_id(image):
            raise BuildFailed(
                f"the Dockerfile names the image ID {image}: name base images by repository:tag"
            )
        owner = job.ctx.runtime.image_owner(image)
        if owner and owner != job.app.name:
            raise BuildFailed(f"the Dockerfile builds on {image}, an image of another app")


def fetch_upstream(job: Job, repo: Path) -> None:
    app = job.app
    if not app.repo_url:
        raise BuildFailed("the app has no upstream repository URL to fetch from")
    token = job.ctx.sealer.unseal(app.repo_token_sealed) if app.repo_token_sealed else None
    settings = job.ctx.settings
    limits = FetchLimits(seconds=settings.fetch_timeout, max_bytes=settings.max_fetch_bytes)
    fetch_commit(repo, app.repo_url, app.branch, job.release.commit, token, job.say, limits)


def _read_config(repo: Path, commit: str, overrides: dict[str, Any]) -> AppConfig:
    if gitrepo.read_file(repo, commit, "Dockerfile") is None:
        raise BuildFailed("no Dockerfile at the root of the repository")
    raw = gitrepo.read_file(repo, commit, "temps.toml") or b""
    try:
        return load_toml(raw.decode("utf-8"), overrides)
    except (InvalidInput, UnicodeDecodeError) as exc:
        raise BuildFailed(str(exc)) from exc


def resolve_config(job: Job) -> AppConfig:
    config = config_of(job.release)
    if not job.release.strategy:
        job.release = job.ctx.store.update_release(job.release_id, strategy=config.deploy.strategy)
    return config


def release_phase(job: Job, config: AppConfig) -> None:
    """The release command runs once from the new image; the live slot never notices."""
    command = config.deploy.release_command
    if not command:
        return
    ctx = job.ctx
    image = job.release.image
    assert image is not None
    job.release = ctx.journal.transition(job.release, S.RELEASING)
    job.say(f"-----> Running release command: {command}")
    code = ctx.runtime.run_once(
        name=ctx.runtime.container_name(job.app.name, job.release.number, "release"),
        image=image,
        command=command,
        env=ctx.sealer.open_env(job.release.env),
        labels=_labels(job),
        output=job.say,
        timeout=config.deploy.release_timeout,
        limits=limits_of(config),
    )
    if code != 0:
        raise ReleaseCommandFailed(f"release command exited with code {code}")


def stop_previous(job: Job, previous: Release | None) -> None:
    """recreate: the old slots stop before the new one boots (downtime, by choice).

    The app must never run twice, so a standby still draining in the background is waited
    for too."""
    ctx = job.ctx
    if previous is not None:
        job.release = ctx.journal.transition(job.release, S.DRAINING)
        job.say(f"-----> recreate: stopping v{previous.number} before starting {job.label}")
        # Out of Traefik first, or new requests would keep its drain from ever ending: from
        # here until the switch the app answers 503.
        unroute(job)
        ctx.journal.transition(previous, S.RETIRED)
        leaving = Leaving.of(previous)
        if leaving is not None:
            drain_and_stop(ctx, leaving, job.say)
    if ctx.retirements.busy(job.app.name):
        job.say("-----> recreate: waiting for the standby slot to drain and stop")
        ctx.retirements.wait(job.app.name, RETIREMENT_WAIT_SECONDS)


def take_over_standby(job: Job, standby: Release | None) -> Slot | None:
    """A rollback inside the bake window: the previous slot is still up, idle, so no boot.

    It passed a full gate before; one passing probe, taken before anything is written, proves
    it still answers, and the release goes from queued straight to the switch. A standby slot
    that does not answer is left to `retire_standby`, and its image boots again instead.
    """
    if standby is None or job.release.rollback_of != standby.number:
        return None
    slot = slot_of(standby)
    assert slot is not None
    check = config_of(standby).healthcheck
    result = probe(slot.url + check.path, check.timeout)
    if not result.ok:
        job.say(
            f"-----> v{standby.number} is on standby but health {check.path} gave "
            f"{result.detail}: booting its image instead"
        )
        return None
    job.ctx.journal.transition(standby, S.RETIRED)
    job.say(
        f"-----> v{standby.number} is still up (bake window): switching back without a boot\n"
        f"health {check.path}: {result.detail}"
    )
    return slot


def retire_standby(job: Job, standby: Release | None) -> None:
    """A newer deploy ends a bake window early: the previous slot drains and goes.

    It may still finish requests that began before the last switch; it does so in the
    background while this deploy builds and is gated."""
    if standby is None:
        return
    job.ctx.journal.transition(standby, S.RETIRED)
    job.say(f"-----> v{standby.number} leaves its bake window early: draining it meanwhile")
    retire_in_background(job.ctx, job.app.name, Leaving.of(standby), job.say)


def limits_of(config: AppConfig) -> Limits:
    res = config.resources
    return Limits(memory_mb=res.memory_mb, cpus=res.cpus, pids=res.pids)


def _labels(job: Job) -> dict[str, str]:
    return {
        "temps.app": job.app.name,
        "temps.release": str(job.release.number),
        "temps.commit": job.release.commit,
    }


def boot(job: Job, config: AppConfig) -> Slot:
    ctx = job.ctx
    image = job.release.image
    assert image is not None
    name = ctx.runtime.container_name(job.app.name, job.release.number)
    job.release = ctx.journal.transition(job.release, S.BOOTING, container=name)
    job.say(f"-----> Starting {name} on port {config.port}")
    slot = ctx.runtime.start(
        name=name,
        image=image,
        port=config.port,
        env=ctx.sealer.open_env(job.release.env),
        labels=_labels(job),
        limits=limits_of(config),
    )
    job.release = ctx.store.update_release(job.release_id, host_port=slot.host_port)
    return slot


def gate(job: Job, config: AppConfig, slot: Slot) -> None:
    ctx = job.ctx
    job.release = ctx.journal.transition(job.release, S.HEALTH_CHECKING)
    check = config.healthcheck
    job.say(
        f"-----> Health check {check.path}: {check.healthy_threshold} passes in a row needed, "
        f"every {check.interval:g}s, deadline {check.deadline:g}s"
    )
    wait_until_healthy(slot.url, check, lambda: ctx.runtime.state(slot.container), job.say)


def switch(job: Job, config: AppConfig, slot: Slot) -> None:
    # The slot is recorded here too: a taken-over standby slot comes to switching unrecorded.
    job.release = job.ctx.journal.transition(
        job.release, S.SWITCHING, container=slot.container, host_port=slot.host_port
    )
    took = route_to(job, slot, job.label, config.healthcheck.path)
    job.log.info("traefik.switched", seconds=round(took, 4))
    job.say(
        f"-----> Traefik routes {job.app.name} to {job.label} (confirmed in {took * 1000:.0f} ms)"
    )


def hand_over(job: Job, config: AppConfig, slot: Slot, previous: Release | None) -> None:
    """Make the new slot the live one; the previous one drains and stops, or bakes in standby.

    The pusher's answer comes once the previous slot is drained; it stops in the background."""
    # The new release goes live before the previous one leaves: a crash in between leaves
    # two live records, and reconciliation keeps the newest, which is what Traefik serves.
    ctx = job.ctx
    bake = config.deploy.bake
    if previous is None:
        go_live(job, slot)
    elif bake > 0:
        go_live(job, slot)
        ctx.journal.transition(previous, S.STANDBY)
        job.say(f"-----> v{previous.number} stays up, idle, for the {bake:g}s bake window")
    else:
        job.release = ctx.journal.transition(job.release, S.DRAINING)
        # The requests in flight are the old release's: its own drain_timeout bounds them.
        leaving = Leaving.of(previous)
        drained = drain_slot(leaving, job.say) if leaving else None
        go_live(job, slot)
        ctx.journal.transition(previous, S.RETIRED)
        # Drained and retired, the old slot gets no request any more: as on Heroku, the
        # pusher has its answer without waiting for Docker to stop it (0.3-1 s here), and
        # the app's next deploy (a rollback, say) does not wait for it either.
        retire_in_background(ctx, job.app.name, leaving, job.say, drained)
    report_traffic(job)


def go_live(job: Job, slot: Slot) -> None:
    job.ctx.runtime.keep_running(slot.container)
    job.release = job.ctx.journal.transition(job.release, S.LIVE)
    job.say(f"-----> {job.label} is live at http://{job.app.name}.{job.ctx.settings.domain}")


def fail(job: Job, error: DeployError) -> None:
    ctx = job.ctx
    tail = error.log_tail
    container = job.release.container
    if container is not None and not tail:
        tail = _container_log(job, container)
    step = str(job.release.state)
    job.log.warning("deploy.failed", step=step, reason=error.reason)
    job.say(f"-----> Deploy failed while {step}: {error.reason}")
    if tail.strip():
        job.say("-----> Last lines of the " + ("build" if step == S.BUILDING else "app") + " log:")
        for line in tail.splitlines()[-LOG_TAIL_LINES:]:
            job.say(f"       {line}")
    else:
        # Nothing new to show the pusher, but the record keeps the deploy's own last lines.
        tail = "\n".join(ctx.store.log_lines(job.release_id)[-LOG_TAIL_LINES:])
    tail = "\n".join(tail.splitlines()[-LOG_TAIL_LINES:])
    job.release = ctx.journal.transition(
        job.release, S.FAILED, failure_reason=error.reason, failed_step=step, log_tail=tail
    )
    if container is not None:
        try:
            if step == S.SWITCHING:
                # Its route was published, then restored: Traefik may have sent it requests.
                leaving = Leaving.of(job.release)
                if leaving is not None:
                    drain_and_stop(ctx, leaving, job.say)
            else:
                # Never routed to: kill, nothing to drain.
                ctx.runtime.discard(container)
        except TempsError as exc:
            # Reconciliation removes it at the next start if the engine is gone now.
            job.log.error("deploy.cleanup_failed", container=container, error=str(exc))


def _container_log(job: Job, container: str) -> str:
    try:
        return job.ctx.runtime.logs_tail(container, LOG_TAIL_LINES)
    except TempsError:
        return ""
