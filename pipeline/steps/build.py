"""Build: the commit becomes an immutable image, and the release learns its config.

A release that already names an image (a rollback, a config change, a redeploy whose image
is still there) skips the build and runs with the config snapshot it was queued with; an
image deploy pulls its image instead (`pipeline.steps.pull`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

from pipeline.app import procfile, storage
from pipeline.app.config import AppConfig, load_toml
from pipeline.app.dockerfile import images_named, is_image_id
from pipeline.builders.detect import DOCKERFILE, Chosen, dockerfile_for, facts_of
from pipeline.builders.plan import Plan
from pipeline.builders.source import CommitSource
from pipeline.context import Context, Deploy
from pipeline.cron import schedule
from pipeline.deploy.strategies import Strategy
from pipeline.errors import BuildFailed, InvalidInput, LayerGone, NotFound, ReleaseCommandFailed
from pipeline.git import repo as gitrepo
from pipeline.git.fetch import FetchLimits, fetch_commit
from pipeline.previews import branches
from pipeline.release import formation
from pipeline.release.records import WEB
from pipeline.release.states import ReleaseState as S
from pipeline.runtime import ContainerSpec, ImageBuild, Limits
from pipeline.settings import Settings
from pipeline.sqlite.models import App, Release, ReleaseSource
from pipeline.steps.pull import pull_image


@dataclass(frozen=True)
class Built:
    """The image a release runs, the config it runs with, and its deploy strategy."""

    image: str
    config: AppConfig
    strategy: Strategy


def built_of(release: Release) -> Built:
    """What a release that already ran (or is running) was built into."""
    assert release.image is not None
    return Built(release.image, release.config, Strategy.named(release.strategy))


HANDOVER_SECONDS = "TEMPS_HANDOVER_SECONDS"


def handover_env(config: AppConfig) -> dict[str, str]:
    """A web container's budget, once its handover signal comes, for ending its own
    connections (`[deploy] handover_window`)."""
    return {HANDOVER_SECONDS: f"{config.deploy.handover_window:g}"}


def limits_of(config: AppConfig, process: str = WEB) -> Limits:
    res = config.resources.of(process)
    return Limits(memory_mb=res.memory_mb, cpus=res.cpus, pids=res.pids)


def labels_of(app: App, release: Release, process: str) -> dict[str, str]:
    """What every container of a release carries: its app, release, commit and process."""
    return {
        "temps.app": app.name,
        "temps.release": str(release.number),
        "temps.commit": release.commit,
        "temps.process": process,
    }


def spec_of(
    deploy: Deploy,
    built: Built,
    name: str,
    process: str = WEB,
    release: Release | None = None,
) -> ContainerSpec:
    """A container of one process type of the release (the deploy's own by default): its
    image, command, environment, labels and limits."""
    release = release or deploy.release
    command = built.config.processes.get(process)
    handover = handover_env(built.config) if process == WEB else {}
    return ContainerSpec(
        name=name,
        image=built.image,
        env={**deploy.ctx.sealer.open_env(release.env), **handover},
        labels=labels_of(deploy.app, release, process),
        limits=limits_of(built.config, process),
        mounts=storage.mounts_of(deploy.ctx.settings, deploy.ctx.store, deploy.app),
        command=("/bin/sh", "-c", command) if command else (),
        stop_timeout=built.config.deploy.stop_timeout,
        placement=built.config.swarm.placement,
    )


def one_off_spec(
    ctx: Context,
    app: App,
    release: Release,
    process: str,
    role: str,
    *,
    command: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ContainerSpec:
    """A container of `release`'s image beside its formation (`temps run`, a cron job): the
    release's environment (and `env`), the app's volumes, the web process's limits and
    placement; labelled as `process`, named by `role` and a random suffix."""
    assert release.image is not None
    config = release.config
    return ContainerSpec(
        name=ctx.runtime.container_name(app.name, release.number, f"{role}-{token_hex(3)}"),
        image=release.image,
        env={**ctx.sealer.open_env(release.env), **(env or {}), "PORT": str(config.port)},
        labels={**labels_of(app, release, process), **(labels or {})},
        limits=limits_of(config, WEB),
        mounts=storage.mounts_of(ctx.settings, ctx.store, app),
        command=command,
        placement=config.swarm.placement,
    )


def build(deploy: Deploy) -> Built:
    if deploy.release.image is None and deploy.release.pulled is not None:
        pull_image(deploy)
    elif deploy.release.image is None:
        build_image(deploy)
    release = deploy.current()
    assert release.image is not None
    config = release.config
    strategy = release.strategy or config.deploy.strategy
    if not release.strategy:
        deploy.ctx.store.set_details(deploy.id, strategy=strategy)
    return Built(release.image, config, Strategy(strategy))


def build_image(deploy: Deploy) -> None:
    ctx, release = deploy.ctx, deploy.release
    deploy.move(S.BUILDING)
    repo = ctx.settings.repo_path(deploy.app.name)
    commit = release.commit
    if release.source == ReleaseSource.WEBHOOK:
        fetch_upstream(deploy, repo)
    config = read_config(repo, commit, deploy.app.settings)
    refuse_seconds(config, ctx.settings.cron_seconds)
    tag = ctx.runtime.image_tag(deploy.app.name, commit)
    ctx.store.set_details(deploy.id, config=config, image=tag)
    if ctx.runtime.has_image(tag):
        deploy.say(f"-----> Reusing image {tag} built for {commit[:12]}")
        return
    chosen = dockerfile_for(
        CommitSource(repo, commit),
        facts_of(deploy.app.name, config, ctx.settings.base_images),
    )
    refuse_other_apps_images(deploy, chosen.dockerfile.encode())
    made: dict[str, bytes] = {}
    if chosen.plan is not None:
        show_plan(deploy, chosen.plan)
        made[DOCKERFILE] = chosen.dockerfile.encode()
    deploy.say(f"-----> Building {tag}")
    with ctx.build_slots:
        # The image is labelled with its app only (what pruning selects by): Docker's classic
        # builder, the one its API runs, turns every build label into a step of its own with
        # an intermediate container, 0.1 s each here. The commit is in the tag, and an image
        # serves many releases (rollbacks, config changes), so the release and commit labels
        # are the containers'.
        settings = ctx.settings
        for attempt in (1, 2):
            try:
                ctx.runtime.build(
                    ImageBuild(
                        tag,
                        gitrepo.stream_tar(repo, commit, made),
                        {"temps.app": deploy.app.name},
                        deploy.say,
                        settings.build_timeout,
                        settings.build_memory_mb,
                        settings.build_cpu_shares,
                    )
                )
                return
            except LayerGone as error:
                # Another image of this engine was pruned as this one reused its layers.
                if attempt == 2:
                    raise
                deploy.say(f"-----> {error}: a cached layer was removed meanwhile; building again")


def show_plan(deploy: Deploy, plan: Plan) -> None:
    """The stack, why, and the Dockerfile temps made for it, as the pusher reads them."""
    deploy.say(f"-----> {plan.detected}")
    deploy.say(f"-----> No Dockerfile: building with this one (temps build show {deploy.app.name})")
    deploy.say("\n".join(f"       {line}" for line in plan.dockerfile.splitlines()))


def refuse_other_apps_images(deploy: Deploy, dockerfile: bytes) -> None:
    """An app builds on public base images and its own, never on another app's."""
    for image in images_named(dockerfile.decode("utf-8", "replace")):
        if is_image_id(image):
            raise BuildFailed(
                f"the Dockerfile names the image ID {image}: name base images by repository:tag"
            )
        owner = deploy.ctx.runtime.image_owner(image)
        if owner and owner != deploy.app.name:
            raise BuildFailed(f"the Dockerfile builds on {image}, an image of another app")


def fetch_upstream(deploy: Deploy, repo: Path) -> None:
    """The release's commit, fetched from the upstream an admin set. A preview has none of its
    own: its app's URL and token, its own ref (`refs/heads/feature-x`, `refs/pull/42/head`:
    GitHub and GitLab serve a request's head in the base repository), its app's repository
    for the objects (as a pushed branch's), its own for the fetched tip."""
    app, ctx = deploy.app, deploy.ctx
    owner, ref = app, f"refs/heads/{app.branch}"
    if app.preview_of is not None and app.preview_ref is not None:
        owner, ref = ctx.store.get_app_by_id(app.preview_of), app.preview_ref
    if not owner.repo_url:
        raise BuildFailed("the app has no upstream repository URL to fetch from")
    token = ctx.sealer.unseal(owner.repo_token_sealed) if owner.repo_token_sealed else None
    limits = FetchLimits(seconds=ctx.settings.fetch_timeout, max_bytes=ctx.settings.max_fetch_bytes)
    objects = ctx.settings.repo_path(owner.name)
    tracked_in = None if owner is app else repo
    commit = deploy.release.commit
    fetch_commit(objects, owner.repo_url, ref, commit, token, deploy.say, limits, tracked_in)
    if owner is not app:
        # Its Procfile was not here when the delivery was answered: a preview runs web only.
        preview = branches.without_workers(ctx.settings, ctx.store, app, commit)
        ctx.store.set_details(deploy.id, formation=formation.checked(preview.formation, {}))


def read_config(repo: Path, commit: str, overrides: Mapping[str, object]) -> AppConfig:
    """The commit's temps.toml with the API's overrides, and its Procfile."""
    raw = gitrepo.read_file(repo, commit, "temps.toml") or b""
    processes = gitrepo.read_file(repo, commit, "Procfile")
    try:
        config = load_toml(raw.decode("utf-8"), overrides)
        return procfile.applied(config, None if processes is None else processes.decode("utf-8"))
    except (InvalidInput, UnicodeDecodeError) as exc:
        raise BuildFailed(str(exc)) from exc


def refuse_seconds(config: AppConfig, allowed: bool) -> None:
    """A schedule with seconds only on a daemon that takes them (`--cron-seconds`)."""
    for index, entry in enumerate(config.cron):
        if schedule.has_seconds(entry.schedule) and not allowed:
            raise BuildFailed(
                f"temps.toml: cron[{index}].schedule: entry {entry.name!r}: {entry.schedule!r} "
                f"has six fields, which a daemon takes only with --cron-seconds; {schedule.FORM}"
            )


def release_phase(deploy: Deploy, built: Built) -> None:
    """The release command runs once from the new image; the live slot never notices."""
    command = built.config.deploy.release_command
    if not command:
        return
    ctx = deploy.ctx
    deploy.move(S.RELEASING)
    deploy.say(f"-----> Running release command: {command}")
    name = ctx.runtime.container_name(deploy.app.name, deploy.release.number, "release")
    spec = spec_of(deploy, built, name)
    code = ctx.runtime.run_once(spec, command, deploy.say, built.config.deploy.release_timeout)
    if code != 0:
        raise ReleaseCommandFailed(f"release command exited with code {code}")


def dockerfile_of(settings: Settings, app: App, commit: str | None) -> tuple[str, Chosen]:
    """The Dockerfile that builds a commit of the app (by default the one `main` names, the
    live one), as a deploy of it would choose: for `temps build show`."""
    repo = settings.repo_path(app.name)
    found = gitrepo.resolve_commit(repo, commit) if commit else gitrepo.head_commit(repo)
    if found is None:
        raise NotFound(f"nothing was pushed to {app.name} yet")
    config = read_config(repo, found, app.settings)
    source = CommitSource(repo, found)
    return found, dockerfile_for(source, facts_of(app.name, config, settings.base_images))
