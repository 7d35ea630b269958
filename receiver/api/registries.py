"""The API of registry logins: what image deploys pull with (admin only).

A password goes in and never comes out: it is sealed at rest like the apps' secrets, and
the listing names each registry and its user only.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from pipeline.app.config import text
from pipeline.app.images import registry_of
from pipeline.errors import InvalidInput
from pipeline.runtime import Credentials
from receiver.api.apps import Body, DaemonDep, PrincipalDep
from receiver.api.views import View
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
MAX_CREDENTIAL = 4096


class LoginRequest(Body):
    username: str
    password: str


class RegistryView(View):
    registry: str  # HOST[:PORT]; docker.io for Docker Hub
    username: str
    created_at: float


@router.get("/registries")
def list_registries(daemon: DaemonDep, who: PrincipalDep) -> list[RegistryView]:
    who.require_admin()
    return [
        RegistryView(registry=login.host, username=login.username, created_at=login.created_at)
        for login in daemon.store.registries.all()
    ]


@router.put("/registries/{registry}")
async def log_in(
    registry: str, body: LoginRequest, daemon: DaemonDep, who: PrincipalDep
) -> RegistryView:
    """Check the login with the registry (as `docker login` does), then keep it, sealed."""
    who.require_admin()
    host = registry_of(registry)
    for value, what in ((body.username, "the username"), (body.password, "the password")):
        text(value, what)
        if not value or len(value) > MAX_CREDENTIAL:
            raise InvalidInput(f"{what} must be 1 to {MAX_CREDENTIAL} characters")
    credentials = Credentials(body.username, body.password)
    await run_in_threadpool(daemon.runtime.check_login, host, credentials)
    sealed = daemon.deployer.ctx.sealer.seal(body.password)
    login = await run_in_threadpool(daemon.store.registries.put, host, body.username, sealed)
    return RegistryView(registry=login.host, username=login.username, created_at=login.created_at)


@router.delete("/registries/{registry}", status_code=204)
def log_out(registry: str, daemon: DaemonDep, who: PrincipalDep) -> Response:
    who.require_admin()
    daemon.store.registries.remove(registry_of(registry))
    return Response(status_code=204)
