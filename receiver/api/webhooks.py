"""POST /hooks/github/<app> and /hooks/gitlab/<app>: verify, de-duplicate, queue, answer 202.

The answer never waits for the deploy: the daemon fetches the named commit from the app's
upstream repository and deploys it through the same pipeline as a push. A push of another
branch, a pull request (GitHub) or a merge request (GitLab) acts on the app's previews
(`receiver.api.previewhooks`).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from pipeline.app import webhooks
from pipeline.app.names import BRANCHES
from pipeline.app.webhooks import PushEvent, RequestEvent
from pipeline.errors import Conflict, InvalidInput, RuntimeUnavailable, TooLarge, Unauthorized
from pipeline.sqlite.models import App, ReleaseSource
from receiver.api import previewhooks
from receiver.api.apps import daemon_of
from receiver.api.previewhooks import Destroying, Ignored, PreviewRelease
from receiver.api.views import ReleaseDetail, View, release_view
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES, Responses

router = APIRouter(prefix="/hooks", responses=ERROR_RESPONSES)


class Ping(View):
    ok: Literal[True]
    event: Literal["ping"]


class Duplicate(View):
    """A delivery seen before (a redelivery, or a replay under a new id): not acted on."""

    duplicate: str  # its delivery id
    deployed: Literal[False]


# 200: a ping or a duplicate; 202: ignored, the release it queued (the app's, or a preview's),
# or the destroy of a preview it started.
Acknowledged = Ping | Duplicate | Ignored | PreviewRelease | ReleaseDetail | Destroying
ACCEPTED: Responses = {
    202: {
        "model": Ignored | PreviewRelease | ReleaseDetail | Destroying,
        "description": "Ignored, queued as a release, or a preview's destroy started",
    }
}


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


@router.post("/github/{name}", responses=ACCEPTED)
async def github(name: str, request: Request, answer: Response) -> Acknowledged:
    daemon = daemon_of(request)
    body = await _body(request, daemon.settings.max_webhook_bytes)
    # The SQLite writes and Docker's ping block: off the event loop.
    return _status(await run_in_threadpool(_github, daemon, name, body, request.headers), answer)


@router.post("/gitlab/{name}", responses=ACCEPTED)
async def gitlab(name: str, request: Request, answer: Response) -> Acknowledged:
    daemon = daemon_of(request)
    body = await _body(request, daemon.settings.max_webhook_bytes)
    return _status(await run_in_threadpool(_gitlab, daemon, name, body, request.headers), answer)


def _status(acknowledged: Acknowledged, answer: Response) -> Acknowledged:
    """202 for what was queued or ignored: acted on (or not) later, not while answering."""
    if isinstance(acknowledged, Ignored | ReleaseDetail | Destroying):
        answer.status_code = 202
    return acknowledged


def _github(daemon: Daemon, name: str, body: bytes, headers: Headers) -> Acknowledged:
    app = daemon.store.get_app(name)
    if not app.webhook_secret_sealed:
        raise Unauthorized(f"app {name!r} has no webhook secret; set one through the API")
    secret = daemon.deployer.ctx.sealer.unseal(app.webhook_secret_sealed)
    webhooks.verify_github(secret, body, headers.get("x-hub-signature-256"))
    event = headers.get("x-github-event", "")
    if event == "ping":
        return Ping(ok=True, event="ping")
    delivery = _delivery_id(headers.get("x-github-delivery"), "X-GitHub-Delivery")
    if event == "pull_request":
        request = webhooks.parse_github_pull_request(body)
        return _request(daemon, app, "github", delivery, body, event, request)
    if event != "push":
        return _ignored(daemon, app, "github", delivery, event, f"{event or 'unnamed'} event")
    return _queue(daemon, app, "github", delivery, body, webhooks.parse_github_push(body))


def _gitlab(daemon: Daemon, name: str, body: bytes, headers: Headers) -> Acknowledged:
    app = daemon.store.get_app(name)
    if not app.webhook_secret_hash:
        raise Unauthorized(f"app {name!r} has no webhook secret; set one through the API")
    webhooks.verify_gitlab(app.webhook_secret_hash, headers.get("x-gitlab-token"))
    event = headers.get("x-gitlab-event", "")
    delivery = _delivery_id(
        headers.get("x-gitlab-event-uuid") or headers.get("idempotency-key"),
        "X-Gitlab-Event-UUID",
    )
    if event == "Merge Request Hook":
        request = webhooks.parse_gitlab_merge_request(body)
        return _request(daemon, app, "gitlab", delivery, body, event, request)
    if event != "Push Hook":
        return _ignored(daemon, app, "gitlab", delivery, event, f"{event or 'unnamed'} event")
    return _queue(daemon, app, "gitlab", delivery, body, webhooks.parse_gitlab_push(body))


def _delivery_id(value: str | None, header: str) -> str:
    """Every delivery GitHub and GitLab send is named: one that is not may be a replay."""
    if not value or len(value) > 200:
        raise InvalidInput(f"missing or invalid {header}: deliveries must carry their id")
    return value


def _ignored(
    daemon: Daemon, app: App, provider: str, delivery: str, event: str, why: str
) -> Ignored:
    claimed = daemon.store.deliveries.claim(app, provider, delivery, event)
    if claimed is not None:
        daemon.store.deliveries.settle(claimed, f"ignored: {why}")
    return Ignored(ignored=why)


def _queue(
    daemon: Daemon, app: App, provider: str, delivery: str, body: bytes, push: PushEvent
) -> Acknowledged:
    digest = hashlib.sha256(body).hexdigest()
    claimed = daemon.store.deliveries.claim(app, provider, delivery, "push", digest)
    if claimed is None:
        # The same id (a redelivery) or the same signed body under a new id (a replay).
        return Duplicate(duplicate=delivery, deployed=False)
    if push.ref.startswith(BRANCHES) and push.ref != f"{BRANCHES}{app.branch}":
        return previewhooks.branch_pushed(daemon, app, claimed, push)
    why = push.ignored_because(app.branch)
    if why is not None:
        daemon.store.deliveries.settle(claimed, f"ignored: {why}")
        return Ignored(ignored=why)
    if not app.repo_url:
        # The upstream is an admin's choice, never the payload's: a payload may name any host.
        daemon.store.deliveries.forget(claimed)  # once the URL is set, a retry deploys
        raise Conflict(
            f"app {app.name!r} has no repository URL to fetch from: an admin sets it with "
            f"PUT /api/apps/{app.name}/source"
        )
    try:
        release = daemon.deployer.submit(app, source=ReleaseSource.WEBHOOK, commit=push.after)
    except RuntimeUnavailable:
        # Refused before anything was recorded: the sender's retry must be able to deploy.
        daemon.store.deliveries.forget(claimed)
        raise
    daemon.store.deliveries.settle(claimed, "queued", release.id)
    return release_view(daemon.store, release)


def _request(
    daemon: Daemon,
    app: App,
    provider: str,
    delivery: str,
    body: bytes,
    event: str,
    request: RequestEvent,
) -> Acknowledged:
    digest = hashlib.sha256(body).hexdigest()
    claimed = daemon.store.deliveries.claim(app, provider, delivery, event, digest)
    if claimed is None:
        return Duplicate(duplicate=delivery, deployed=False)
    return previewhooks.request_changed(daemon, app, claimed, request)
