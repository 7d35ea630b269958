"""The API of a running canary: promote it or abort it by hand (admin only)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from pipeline.errors import Conflict
from pipeline.states import IN_FLIGHT
from pipeline.states import ReleaseState as S
from receiver.api.apps import DaemonDep, PrincipalDep, app_for
from receiver.api.views import release_view
from receiver.daemon import Daemon
from receiver.problems import ERROR_RESPONSES

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
DECIDED_WAIT_SECONDS = 60.0  # the canary reads a call within half a second; then the switch


def _decide(daemon: Daemon, name: str, decision: str) -> dict[str, Any]:
    """Hand the decision to the app's running canary, and answer once it has taken it."""
    app = daemon.store.get_app(name)
    running = daemon.store.newest_in(app, S.CANARY)
    if running is None:
        raise Conflict(f"app {name!r} has no canary running")
    daemon.deployer.ctx.canary_calls.call(name, decision)
    deadline = time.monotonic() + DECIDED_WAIT_SECONDS
    release = running
    while time.monotonic() < deadline:
        release = daemon.store.get_release(running.pk)
        if release.state not in IN_FLIGHT:  # promoted and live, or withdrawn and failed
            break
        time.sleep(0.1)
    return release_view(daemon.store, release)


@router.post("/apps/{name}/canary/promote")
def promote(name: str, daemon: DaemonDep, who: PrincipalDep) -> dict[str, Any]:
    """Promote the running canary now: 100 % of the requests to the new release."""
    who.require_admin()
    app_for(daemon, who, name)
    return _decide(daemon, name, "promote")


@router.post("/apps/{name}/canary/abort")
def abort(name: str, daemon: DaemonDep, who: PrincipalDep) -> dict[str, Any]:
    """Withdraw the running canary now; the new release fails at step canary."""
    who.require_admin()
    app_for(daemon, who, name)
    return _decide(daemon, name, "abort")
