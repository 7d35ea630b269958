"""API actions that start deploys: rollback, redeploy, config change; and live release logs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import JsonValue

from pipeline.app import webhooks
from pipeline.app.config import parse_config, text
from pipeline.deploy import operations
from pipeline.errors import InvalidInput
from pipeline.sqlite.models import App, Release
from pipeline.steps import notify
from receiver.api.apps import (
    Body,
    BodyNumber,
    DaemonDep,
    Number,
    PrincipalDep,
    app_for,
    app_to_change,
)
from receiver.api.views import AppWithSettings, ReleaseDetail, View, app_view, release_view
from receiver.auth import Principal
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES, Responses
from receiver.waits import waiting

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
WAIT_SECONDS = 900.0
QUEUED: Responses = {202: {"model": ReleaseDetail, "description": "Queued; not waited for"}}


class RollbackRequest(Body):
    release: BodyNumber | None = None


class DeployRequest(Body):
    commit: str | None = None
    image: str | None = None  # REGISTRY/NAME:TAG to pull instead of a commit to build
    strategy: str | None = None


class EnvRequest(Body):
    env: dict[str, str | None]
    # true marks the variables set here secret, false unmarks them, absent keeps their marks
    # (a preview inherits no secret unless its [preview] names it).
    secret: bool | None = None


class AppSettingsRequest(Body):
    settings: dict[str, JsonValue]


class EnvView(View):
    env: dict[str, str]  # secret values masked
    secrets: list[str]  # the names marked secret


class EnvChange(EnvView):
    release: ReleaseDetail | None  # the release the change started, if one is live


ENV_QUEUED: Responses = {
    202: {"model": EnvChange, "description": "A release started; not waited for"}
}


async def _answer(daemon: Daemon, release: Release, wait: bool, answer: Response) -> ReleaseDetail:
    """The release once its deploy has ended with `wait`; without, as queued (202)."""
    if wait:
        release = await waiting(operations.wait_for, daemon.deployer, release, WAIT_SECONDS)
    else:
        answer.status_code = 202
    return await run_in_threadpool(release_view, daemon.store, release)


@router.post("/apps/{name}/rollback", responses=QUEUED)
async def rollback(
    name: str,
    daemon: DaemonDep,
    who: PrincipalDep,
    answer: Response,
    body: RollbackRequest | None = None,
    wait: bool = False,
) -> ReleaseDetail:
    number = body.release if body else None

    def start() -> Release:
        return operations.rollback(daemon.deployer, app_to_change(daemon, who, name), number)

    release = await run_in_threadpool(start)
    return await _answer(daemon, release, wait, answer)


@router.post("/apps/{name}/deploy", responses=QUEUED)
async def deploy(
    name: str,
    daemon: DaemonDep,
    who: PrincipalDep,
    answer: Response,
    body: DeployRequest | None = None,
    wait: bool = False,
) -> ReleaseDetail:
    request = body or DeployRequest()

    def start() -> Release:
        app = app_to_change(daemon, who, name)
        if request.image is not None:
            if request.commit is not None:
                raise InvalidInput("give a commit or an image to deploy, not both")
            text(request.image, "the image")
            return operations.deploy_image(daemon.deployer, app, request.image, request.strategy)
        return operations.redeploy(daemon.deployer, app, request.commit, request.strategy)

    release = await run_in_threadpool(start)
    return await _answer(daemon, release, wait, answer)


@router.get("/apps/{name}/config")
def get_config(name: str, daemon: DaemonDep, who: PrincipalDep) -> EnvView:
    app = app_for(daemon, who, name)
    return _env_view(daemon, app)


def _env_view(daemon: Daemon, app: App) -> EnvView:
    env = daemon.deployer.ctx.sealer.open_env(app.env)
    return EnvView(env=operations.masked_env(env, app.secret_keys), secrets=app.secret_keys)


async def _change_env(
    daemon: Daemon,
    who: Principal,
    name: str,
    change: Callable[[dict[str, str]], dict[str, str]],
    marks: Callable[[set[str]], set[str]],
    wait: bool,
    answer: Response,
) -> EnvChange:
    """Apply `change` to the app's environment and `marks` to its secret names (all SQLite
    work off the event loop)."""

    def apply() -> tuple[EnvView, Release | None]:
        app = app_to_change(daemon, who, name)
        env = change(daemon.deployer.ctx.sealer.open_env(app.env))
        secret = marks(set(app.secret_keys)) & set(env)
        release = operations.change_env(daemon.deployer, app, env, sorted(secret))
        return _env_view(daemon, daemon.store.get_app(name)), release

    view, release = await run_in_threadpool(apply)
    if release is None:
        return EnvChange(**dict(view), release=None)
    return EnvChange(**dict(view), release=await _answer(daemon, release, wait, answer))


def _marking(body: EnvRequest) -> Callable[[set[str]], set[str]]:
    """The secret names after the change: those set here marked or unmarked as asked."""
    named = {key for key, value in body.env.items() if value is not None}

    def marks(before: set[str]) -> set[str]:
        if body.secret is None:
            return before
        return before | named if body.secret else before - named

    return marks


@router.put("/apps/{name}/config", responses=ENV_QUEUED)
async def replace_config(
    name: str,
    body: EnvRequest,
    daemon: DaemonDep,
    who: PrincipalDep,
    answer: Response,
    wait: bool = False,
) -> EnvChange:
    who.require_admin()
    env = {key: value for key, value in body.env.items() if value is not None}
    return await _change_env(daemon, who, name, lambda _old: env, _marking(body), wait, answer)


@router.patch("/apps/{name}/config", responses=ENV_QUEUED)
async def update_config(
    name: str,
    body: EnvRequest,
    daemon: DaemonDep,
    who: PrincipalDep,
    answer: Response,
    wait: bool = False,
) -> EnvChange:
    """Merge into the environment; a key set to null is removed."""
    who.require_admin()

    def merge(env: dict[str, str]) -> dict[str, str]:
        for key, value in body.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    return await _change_env(daemon, who, name, merge, _marking(body), wait, answer)


@router.patch("/apps/{name}")
def update_app_settings(
    name: str, body: AppSettingsRequest, daemon: DaemonDep, who: PrincipalDep
) -> AppWithSettings:
    """Override temps.toml keys for this app (e.g. the default strategy) from the next deploy."""
    who.require_admin()
    app_to_change(daemon, who, name)
    parse_config(body.settings)
    app = daemon.store.update_app(name, settings=body.settings)
    view = app_view(daemon.store, daemon.settings, daemon.supervisor.census, app)
    return AppWithSettings(**dict(view), settings=body.settings)


@router.get(
    "/apps/{name}/releases/{number}/log",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def release_log(
    name: str, number: Number, daemon: DaemonDep, who: PrincipalDep, follow: bool = False
) -> StreamingResponse:
    app = app_for(daemon, who, name)
    release = daemon.store.release_by_number(app, number)
    release_id = release.pk

    async def lines() -> AsyncIterator[bytes]:
        position = 0
        while True:
            chunk = await waiting(
                daemon.journal.follow, release_id, position, 15.0 if follow else 0.0
            )
            position = chunk.position
            yield "".join(line + "\n" for line in chunk.lines).encode()
            if chunk.done or not follow:
                return

    return StreamingResponse(lines(), media_type="text/plain; charset=utf-8")


class SourceRequest(Body):
    repo_url: str | None = None
    branch: str = "main"
    token: str | None = None


class SecretRequest(Body):
    secret: str | None = None


class NotificationRequest(Body):
    url: str | None = None
    secret: str | None = None


class SourceView(View):
    repo_url: str | None
    branch: str
    token_set: bool


class WebhookSecret(View):
    secret: str  # shown this once
    github_url: str
    gitlab_url: str


class NotificationsOff(View):
    url: None


class Notifications(View):
    url: str
    secret: str  # shown this once
    signature_header: str


class DeliveryView(View):
    provider: str
    delivery_id: str
    event: str
    outcome: str  # queued, ignored: <why>
    received_at: float


@router.put("/apps/{name}/source")
def set_source(name: str, body: SourceRequest, daemon: DaemonDep, who: PrincipalDep) -> SourceView:
    """The upstream repository webhooks fetch from, its deploy branch and optional token."""
    who.require_admin()
    app_to_change(daemon, who, name)
    operations.validate_source(body.repo_url, body.branch)
    if body.token is not None:
        text(body.token, "the token")
    sealed = daemon.deployer.ctx.sealer.seal(body.token) if body.token else None
    app = daemon.store.update_app(
        name, repo_url=body.repo_url, branch=body.branch, repo_token_sealed=sealed
    )
    return SourceView(repo_url=app.repo_url, branch=app.branch, token_set=sealed is not None)


@router.post("/apps/{name}/webhook-secret")
def rotate_webhook_secret(
    name: str, daemon: DaemonDep, who: PrincipalDep, body: SecretRequest | None = None
) -> WebhookSecret:
    """Set or rotate the app's webhook secret; the answer is the only time it is shown."""
    who.require_admin()
    app_to_change(daemon, who, name)
    secret = operations.new_secret(body.secret if body else None)
    daemon.store.update_app(
        name,
        webhook_secret_sealed=daemon.deployer.ctx.sealer.seal(secret),
        webhook_secret_hash=webhooks.hash_secret(secret),
    )
    base = daemon.settings.listen.url
    return WebhookSecret(
        secret=secret,
        github_url=f"{base}/hooks/github/{name}",
        gitlab_url=f"{base}/hooks/gitlab/{name}",
    )


@router.put("/apps/{name}/notifications")
def set_notifications(
    name: str, body: NotificationRequest, daemon: DaemonDep, who: PrincipalDep
) -> Notifications | NotificationsOff:
    """Where to POST signed release events; a null url turns them off."""
    who.require_admin()
    app_to_change(daemon, who, name)
    if body.url is None:
        daemon.store.update_app(name, notify_url=None, notify_secret_sealed=None)
        return NotificationsOff(url=None)
    operations.validate_source(body.url, "main")
    secret = operations.new_secret(body.secret)
    daemon.store.update_app(
        name, notify_url=body.url, notify_secret_sealed=daemon.deployer.ctx.sealer.seal(secret)
    )
    return Notifications(url=body.url, secret=secret, signature_header=notify.SIGNATURE_HEADER)


@router.get("/apps/{name}/deliveries")
def list_deliveries(name: str, daemon: DaemonDep, who: PrincipalDep) -> list[DeliveryView]:
    app = app_for(daemon, who, name)
    return [DeliveryView.model_validate(d) for d in daemon.store.deliveries.of(app)]
