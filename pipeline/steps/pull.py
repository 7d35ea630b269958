"""Pull: an image deploy's image comes from its registry instead of a build.

The image is pulled with the registry's login when temps has one (`temps registry login`),
pinned by the digest the registry gave, and tagged as the app's own
(`temps/<app>:<digest>-<home>`, labelled with the app) by a build of one `FROM` line at the
build's limits: pruning, the rollback's check and Swarm's push treat it as a built image.
The registry's names of it are then removed from the engine, so that pruning the app's tag
frees it. Its settings are the defaults and the app's own (`PATCH /api/apps/<app>`): no
commit goes with an image, so no `temps.toml` or `Procfile` either.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping

from pipeline.app import procfile
from pipeline.app.config import AppConfig, load_toml
from pipeline.app.images import ImageReference, parse_reference
from pipeline.context import Deploy
from pipeline.errors import BuildFailed, InvalidInput
from pipeline.release.states import ReleaseState as S
from pipeline.runtime import Credentials, ImageBuild


def pull_image(deploy: Deploy) -> None:
    ctx, release = deploy.ctx, deploy.release
    assert release.pulled is not None
    deploy.move(S.BUILDING)
    reference = parse_reference(release.pulled)
    config = config_of(deploy.app.settings)
    login = ctx.store.registries.of(reference.registry)
    credentials = None
    if login is not None:
        credentials = Credentials(login.username, ctx.sealer.unseal(login.password_sealed))
    who = f" as {login.username}" if login else ""
    if reference.digest and ctx.runtime.has_image(tag_of(deploy, reference.digest)):
        # Pinned by a digest pulled before (a redeploy): the same bytes are here already.
        digest = reference.digest
    else:
        deploy.say(f"-----> Pulling {reference.pinned}{who}")
        digest = ctx.runtime.pull(reference.name, reference.version, credentials, deploy.say)
    pinned = reference.with_digest(digest)
    tag = tag_of(deploy, digest)
    ctx.store.set_details(deploy.id, config=config, image=tag, pulled=pinned.pinned)
    if ctx.runtime.has_image(tag):
        deploy.say(f"-----> Reusing image {tag} of {digest[:19]}")
    else:
        deploy.say(f"-----> Tagging {pinned.pinned} as {tag}")
        adopt(deploy, pinned, tag)
    # The registry's names go: the app's tag alone holds the image, and pruning it frees it.
    ctx.runtime.untag((f"{reference.name}:{reference.tag}", f"{reference.name}@{digest}"))


def adopt(deploy: Deploy, pinned: ImageReference, tag: str) -> None:
    """Tag the pulled image as the app's own, by a build of one FROM line."""
    ctx = deploy.ctx
    settings = ctx.settings
    with ctx.build_slots:
        ctx.runtime.build(
            ImageBuild(
                tag,
                iter((dockerfile_context(pinned),)),  # a stream: a list is a form to requests
                {"temps.app": deploy.app.name},
                deploy.say,
                settings.build_timeout,
                settings.build_memory_mb,
                settings.build_cpu_shares,
            )
        )


def tag_of(deploy: Deploy, digest: str) -> str:
    """The app's own tag of the image of `digest`."""
    return deploy.ctx.runtime.image_tag(deploy.app.name, digest.partition(":")[2])


def config_of(overrides: Mapping[str, object]) -> AppConfig:
    """An image deploy's settings: the defaults under the app's own."""
    try:
        return procfile.applied(load_toml("", overrides), None)
    except InvalidInput as exc:
        raise BuildFailed(str(exc)) from exc


def dockerfile_context(reference: ImageReference) -> bytes:
    """A build context of one Dockerfile: the pulled image by its digest, nothing added."""
    dockerfile = f"FROM {reference.name}@{reference.digest}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        entry = tarfile.TarInfo("Dockerfile")
        entry.size = len(dockerfile)
        entry.mode = 0o644
        tar.addfile(entry, io.BytesIO(dockerfile))
    return buffer.getvalue()
