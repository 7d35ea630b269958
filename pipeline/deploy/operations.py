"""What the API asks of the pipeline beyond a push: rollback, redeploy, config change."""

from __future__ import annotations

import re
import secrets
import time

from pipeline.app.config import text
from pipeline.app.images import parse_reference
from pipeline.app.variables import ENV_KEY, MAX_ENV_VALUE, RESERVED_KEYS, is_secret
from pipeline.deploy.queue import Deployer
from pipeline.deploy.strategies import Strategy
from pipeline.errors import Conflict, InvalidInput
from pipeline.git import repo as gitrepo
from pipeline.release.states import ReleaseState as S
from pipeline.sqlite.models import App, Release, ReleaseSource


def rollback(deployer: Deployer, app: App, number: int | None) -> Release:
    """A new release reusing release N's image and config snapshot: no rebuild."""
    store = deployer.ctx.store
    target = store.release_by_number(app, number) if number else _previous_live(deployer, app)
    if target.state == S.LIVE:
        raise Conflict(f"v{target.number} is already live")
    if target.state not in (S.RETIRED, S.STANDBY) or target.image is None:
        raise Conflict(
            f"v{target.number} never went live ({target.state}); nothing to roll back to"
        )
    if target.state != S.STANDBY and not deployer.ctx.runtime.has_image(target.image):
        raise Conflict(
            f"the image of v{target.number} ({target.image}) was pruned; "
            "redeploy its commit instead"
        )
    # As on Heroku, the app's environment goes back too, not only the container's; and the
    # formation it ran with.
    env = target.env
    if target.formation is not None:
        app = store.update_app(app.name, formation=target.formation)
    # A rollback is to a release that served already: it is not judged as a canary again.
    canary = target.strategy == Strategy.CANARY
    strategy = Strategy.BLUE_GREEN.value if canary else target.strategy
    return _again(deployer, app, target, ReleaseSource.ROLLBACK, env, target.number, env, strategy)


def _again(
    deployer: Deployer,
    app: App,
    base: Release,
    source: ReleaseSource,
    env: str | None = None,
    rollback_of: int | None = None,
    app_env: str | None = None,
    strategy: str | None = None,
) -> Release:
    """A new release of `base`'s image and config snapshot: no build."""
    return deployer.submit(
        app,
        source=source,
        commit=base.commit,
        image=base.image,
        pulled=base.pulled,
        config=base.config,
        strategy=base.strategy if strategy is None else strategy,
        rollback_of=rollback_of,
        app_env=app_env,
        env=app.env if env is None else env,
    )


def _previous_live(deployer: Deployer, app: App) -> Release:
    release = deployer.ctx.store.newest_in(app, S.STANDBY, S.RETIRED)
    if release is None:
        raise Conflict(f"app {app.name!r} has no earlier release to roll back to")
    return release


def redeploy(deployer: Deployer, app: App, commit: str | None, strategy: str | None) -> Release:
    """Deploy a commit already in the app's repo (default: the live one), rebuilt if needed;
    a live image deploy is deployed again from the image it pulled, by its digest."""
    _check_strategy(strategy)
    repo = deployer.ctx.settings.repo_path(app.name)
    if commit is None:
        live = deployer.ctx.store.live_release(app)
        if live is not None and live.pulled is not None:
            source = ReleaseSource.REDEPLOY
            return deployer.submit(
                app, source=source, commit="", pulled=live.pulled, strategy=strategy or ""
            )
        commit = live.commit if live else gitrepo.head_commit(repo)
        if commit is None:
            raise Conflict(f"app {app.name!r} has nothing to deploy yet: push first")
    full = gitrepo.resolve_commit(repo, commit)
    return deployer.submit(app, source=ReleaseSource.REDEPLOY, commit=full, strategy=strategy or "")


def deploy_image(deployer: Deployer, app: App, image: str, strategy: str | None) -> Release:
    """Deploy an image from a registry (`temps deploy --image`): pulled, then gated and
    switched as a build would be. It has no commit."""
    _check_strategy(strategy)
    reference = parse_reference(image)
    return deployer.submit(
        app,
        source=ReleaseSource.IMAGE,
        commit="",
        pulled=reference.pinned,
        strategy=strategy or "",
    )


def _check_strategy(strategy: str | None) -> None:
    if strategy is not None and strategy not in set(Strategy):
        raise InvalidInput(f"strategy must be one of {', '.join(Strategy)}")


def change_env(
    deployer: Deployer, app: App, env: dict[str, str], secret_keys: list[str]
) -> Release | None:
    """Store the new environment and which of its names are secret; like config:set, it
    ships as a new release of the live image."""
    validate_env(env, deployer.ctx.settings.max_env_vars)
    store = deployer.ctx.store
    app = store.update_app(app.name, env=deployer.ctx.sealer.seal_env(env), secret_keys=secret_keys)
    live = store.live_release(app)
    if live is None or live.image is None:
        return None
    return _again(deployer, app, live, ReleaseSource.CONFIG)


def validate_env(env: dict[str, str], max_vars: int) -> None:
    if len(env) > max_vars:
        raise InvalidInput(f"at most {max_vars} environment variables, got {len(env)}")
    for key, value in env.items():
        text(value if isinstance(value, str) else "", f"the value of {key[:64]!r}")
        if not ENV_KEY.match(key):
            raise InvalidInput(f"invalid environment variable name {key!r}")
        if key in RESERVED_KEYS:
            raise InvalidInput(f"{key} is set by temps and cannot be configured")
        if not isinstance(value, str):
            raise InvalidInput(f"the value of {key} must be a string")
        if len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise InvalidInput(f"the value of {key} is too long or holds a NUL byte")


def validate_source(url: str | None, branch: str) -> None:
    if url is not None:
        text(url, "the repository URL")
    if url is not None and not re.fullmatch(r"https?://[^\s]{1,2000}", url):
        raise InvalidInput(f"repository URL must be http(s)://..., got {url!r}")
    if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", branch) or ".." in branch:
        raise InvalidInput(f"invalid branch name {branch!r}")


def new_secret(given: str | None) -> str:
    if given is None:
        return secrets.token_urlsafe(32)
    text(given, "the secret")
    if not 16 <= len(given) <= 256:
        raise InvalidInput("a secret must be 16 to 256 characters")
    return given


def masked_env(env: dict[str, str], marked: list[str]) -> dict[str, str]:
    """Values marked secret, or of secret-looking keys, are never echoed back in full."""
    return {
        key: f"<hidden, {len(value)} characters>" if is_secret(key, marked) else value
        for key, value in env.items()
    }


def wait_for(deployer: Deployer, release: Release, timeout: float) -> Release:
    """Block until the release is live or has ended, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    position = 0
    while (remaining := deadline - time.monotonic()) > 0:
        chunk = deployer.ctx.journal.follow(release.pk, position, min(remaining, 5.0))
        position = chunk.position
        if chunk.done:
            break
    return deployer.ctx.store.get_release(release.pk)
