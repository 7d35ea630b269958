"""The git endpoints at /<app>.git, behind HTTP Basic auth with a token as password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from pipeline.errors import Forbidden, NotFound, RateLimited, Unauthorized
from pipeline.git.pack import PackLimits
from pipeline.sqlite.models import App
from receiver.api.apps import client_address, daemon_of
from receiver.auth import GIT_HINT, basic_password, guarded_authenticate
from receiver.git import http as git_http
from receiver.git.push import deploy_on_push

# git's own protocol, not JSON: left out of the OpenAPI schema.
router = APIRouter(include_in_schema=False)


def _authorize(request: Request, name: str) -> Response | App:
    """The app a request may act on, or the answer that refuses it. Reads SQLite: an async
    caller runs it on the thread pool."""
    daemon = daemon_of(request)
    try:
        who = guarded_authenticate(
            daemon.store,
            daemon.limiter,
            client_address(request),
            basic_password(request.headers.get("authorization")),
            request.url.path,
        )
        who.require_app(name)
        return daemon.store.get_app(name)
    except Unauthorized as exc:
        # git sends credentials only after a 401 with Basic, and shows this body to the user.
        return PlainTextResponse(
            f"{exc}. {GIT_HINT}",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="temps"'},
        )
    except RateLimited as exc:
        return PlainTextResponse(f"temps: {exc}\n", status_code=429)
    except Forbidden as exc:
        return PlainTextResponse(f"temps: {exc}\n", status_code=403)
    except NotFound:
        return PlainTextResponse(
            f"temps: no app named {name!r}; create it first: POST /api/apps\n", status_code=404
        )


@router.get("/{name}.git/info/refs")
def info_refs(name: str, request: Request, service: str = "") -> Response:
    app = _authorize(request, name)
    if isinstance(app, Response):
        return app
    if service not in git_http.SERVICES:
        return PlainTextResponse("temps: only the smart HTTP protocol is served\n", 403)
    daemon = daemon_of(request)
    return git_http.advertise(daemon.settings.repo_path(name), service, deploy_on_push(daemon, app))


@router.post("/{name}.git/{service}")
async def rpc(name: str, service: str, request: Request) -> Response:
    app = await run_in_threadpool(_authorize, request, name)
    if isinstance(app, Response):
        return app
    if service not in git_http.SERVICES:
        return PlainTextResponse("temps: unknown git service\n", 404)
    if request.headers.get("content-type") != f"application/x-{service}-request":
        return PlainTextResponse("temps: invalid Content-Type for a git request\n", 415)
    daemon = daemon_of(request)
    return await git_http.serve_rpc(
        request,
        daemon.settings.repo_path(name),
        service,
        deploy_on_push(daemon, app),
        daemon.settings.max_push_bytes,
        PackLimits(daemon.settings.max_object_bytes, daemon.settings.max_unpacked_bytes),
    )
