"""The git endpoints at /<app>.git, behind HTTP Basic auth with a token as password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from pipeline.errors import Forbidden, NotFound, TempsError, UnsupportedMediaType
from pipeline.git.pack import PackLimits
from pipeline.sqlite.models import App
from receiver.api.apps import client_address, daemon_of
from receiver.auth import basic_password, guarded_authenticate
from receiver.git import http as git_http
from receiver.git.push import deploy_on_push
from receiver.problems import git_refusal

# git's own protocol, not JSON: left out of the OpenAPI schema.
router = APIRouter(include_in_schema=False)


def _authorize(request: Request, name: str) -> App:
    """The app a request may act on; a TempsError says why not. Reads SQLite: an async
    caller runs it on the thread pool."""
    daemon = daemon_of(request)
    who = guarded_authenticate(
        daemon.store,
        daemon.limiter,
        client_address(request),
        basic_password(request.headers.get("authorization")),
        request.url.path,
    )
    who.require_app(name)
    try:
        app = daemon.store.get_app(name)
    except NotFound as exc:
        raise NotFound(f"no app named {name!r}; create it first: POST /api/apps") from exc
    daemon.destroyer.ctx.destroying.refuse(name)  # its repository is on its way out
    return app


@router.get("/{name}.git/info/refs")
def info_refs(name: str, request: Request, service: str = "") -> Response:
    try:
        app = _authorize(request, name)
        if service not in git_http.SERVICES:
            raise Forbidden("only the smart HTTP protocol is served")
    except TempsError as exc:
        return git_refusal(exc)
    daemon = daemon_of(request)
    return git_http.advertise(daemon.settings.repo_path(name), service, deploy_on_push(daemon, app))


@router.post("/{name}.git/{service}")
async def rpc(name: str, service: str, request: Request) -> Response:
    try:
        app = await run_in_threadpool(_authorize, request, name)
        if service not in git_http.SERVICES:
            raise NotFound("unknown git service")
        if request.headers.get("content-type") != f"application/x-{service}-request":
            raise UnsupportedMediaType("invalid Content-Type for a git request")
    except TempsError as exc:
        return git_refusal(exc)
    daemon = daemon_of(request)
    return await git_http.serve_rpc(
        request,
        daemon.settings.repo_path(name),
        service,
        deploy_on_push(daemon, app),
        daemon.settings.max_push_bytes,
        PackLimits(daemon.settings.max_object_bytes, daemon.settings.max_unpacked_bytes),
    )
