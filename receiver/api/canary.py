"""The API of a running canary: promote it or abort it by hand (admin only)."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.deploy import operations
from pipeline.errors import Conflict
from pipeline.release.states import ReleaseState as S
from receiver.api.apps import DaemonDep, PrincipalDep, app_to_change
from receiver.api.views import ReleaseDetail, release_view
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
DECIDED_WAIT_SECONDS = 60.0


def _decide(daemon: Daemon, name: str, decision: str) -> ReleaseDetail:
    """Hand the decision to the app's running canary, and answer once its deploy has ended."""
    app = daemon.store.get_app(name)
    running = daemon.store.newest_in(app, S.CANARY)
    if running is None:
        raise Conflict(f"app {name!r} has no canary running")
    daemon.deployer.ctx.canary_calls.call(name, decision)
    # The canary reads the call within half a second; then the switch, or the withdrawal.
    release = operations.wait_for(daemon.deployer, running, DECIDED_WAIT_SECONDS)
    return release_view(daemon.store, release)


@router.post("/apps/{name}/canary/promote")
def promote(name: str, daemon: DaemonDep, who: PrincipalDep) -> ReleaseDetail:
    """Promote the running canary now: 100 % of the requests to the new release."""
    who.require_admin()
    app_to_change(daemon, who, name)
    return _decide(daemon, name, "promote")


@router.post("/apps/{name}/canary/abort")
def abort(name: str, daemon: DaemonDep, who: PrincipalDep) -> ReleaseDetail:
    """Withdraw the running canary now; the new release fails at step canary."""
    who.require_admin()
    app_to_change(daemon, who, name)
    return _decide(daemon, name, "abort")
