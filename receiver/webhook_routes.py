"""POST /hooks/github/<app> and /hooks/gitlab/<app>: verify, de-duplicate, queue, answer 202.

The answer never waits for the deploy: the daemon fetches the named commit from the app's
upstream repository and deploys it through the same pipeline as a push.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pipeline import webhooks
from pipeline.errors import RuntimeUnavailable, TooLarge, Unauthorized
from pipeline.models import App
from pipeline.webhooks import PushEvent
from receiver.api import daemon_of
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES
from receiver.views import release_view

router = APIRouter(prefix="/hooks", responses=ERROR_RESPONSES)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"payload larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"payload larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/github/{name}")
async def github(name: str, request: Request) -> JSONResponse:
    daemon = daemon_of(request)
    body = await _body(request, daemon.settings.max_webhook_bytes)
    app = daemon.store.get_app(name)
    if not app.webhook_secret_sealed:
        raise Unauthorized(f"app {name!r} has no webhook secret; set one through the API")
    secret = daemon.deployer.ctx.sealer.unseal(app.webhook_secret_sealed)
    webhooks.verify_github(secret, body, request.headers.get("x-hub-signature-256"))
    event = request.headers.get("x-github-event", "")
    if event == "ping":
        return JSONResponse({"ok": True, "event": "ping"})
    delivery = request.headers.get("x-github-delivery", "")
    if event != "push":
        return _ignored(daemon, app, "github", delivery, event, f"{event or 'unnamed'} event")
    return _queue(daemon, app, "github", delivery, webhooks.parse_github_push(body))


@router.post("/gitlab/{name}")
async def gitlab(name: str, request: Request) -> JSONResponse:
    daemon = daemon_of(request)
    body = await _body(request, daemon.settings.max_webhook_bytes)
    app = daemon.store.get_app(name)
    if not app.webhook_secret_hash:
        raise Unauthorized(f"app {name!r} has no webhook secret; set one through the API")
    webhooks.verify_gitlab(app.webhook_secret_hash, request.headers.get("x-gitlab-token"))
    event = request.headers.get("x-gitlab-event", "")
    delivery = request.headers.get("x-gitlab-event-uuid") or request.headers.get(
        "idempotency-key", ""
    )
    if event != "Push Hook":
        return _ignored(daemon, app, "gitlab", delivery, event, f"{event or 'unnamed'} event")
    return _queue(daemon, app, "gitlab", delivery, webhooks.parse_gitlab_push(body))


def _ignored(
    daemon: Daemon, app: App, provider: str, delivery: str, event: str, why: str
) -> JSONResponse:
    if delivery:
        claimed = daemon.store.claim_delivery(app, provider, delivery, event)
        if claimed is not None:
            daemon.store.settle_delivery(claimed, f"ignored: {why}")
    return JSONResponse({"ignored": why}, status_code=202)


def _queue(daemon: Daemon, app: App, provider: str, delivery: str, push: PushEvent) -> JSONResponse:
    claimed = None
    if delivery:
        claimed = daemon.store.claim_delivery(app, provider, delivery, "push")
        if claimed is None:
            return JSONResponse({"duplicate": delivery, "deployed": False})
    why = push.ignored_because(app.branch)
    if why is not None:
        if claimed is not None:
            daemon.store.settle_delivery(claimed, f"ignored: {why}")
        return JSONResponse({"ignored": why}, status_code=202)
    if not app.repo_url and push.clone_url:
        app = daemon.store.update_app(app.name, repo_url=push.clone_url)
    try:
        release = daemon.deployer.submit(app, source="webhook", commit=push.after)
    except RuntimeUnavailable:
        if claimed is not None:
            daemon.store.settle_delivery(claimed, "refused: Docker engine unavailable")
        raise
    if claimed is not None:
        daemon.store.settle_delivery(claimed, "queued", release.id)
    return JSONResponse(release_view(daemon.store, release), status_code=202)
