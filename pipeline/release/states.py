"""The life of a release: its states and the one table of allowed moves between them
(`pipeline.release.transition` makes the moves)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ReleaseState(enum.StrEnum):
    QUEUED = "queued"  # recorded, waiting for the app's previous deploy to finish
    BUILDING = "building"  # exporting the commit and building its image
    RELEASING = "releasing"  # running the release command in a one-off container
    BOOTING = "booting"  # starting the new slot's container
    HEALTH_CHECKING = "health_checking"  # the gate: N consecutive 2xx probes
    CANARY = "canary"  # a share of the requests, judged against the live release's
    SWITCHING = "switching"  # publishing the Traefik route and confirming it
    DRAINING = "draining"  # waiting for requests in flight on the old slot
    LIVE = "live"  # serving traffic
    STANDBY = "standby"  # was live; kept running, unrouted, during the bake window
    RETIRED = "retired"  # was live, replaced by a newer release
    FAILED = "failed"  # a step failed; the previous release kept serving
    SUPERSEDED = "superseded"  # a newer deploy was queued before this one started
    INTERRUPTED = "interrupted"  # the daemon stopped while this deploy was in flight


TERMINAL = frozenset(
    {
        ReleaseState.RETIRED,
        ReleaseState.FAILED,
        ReleaseState.SUPERSEDED,
        ReleaseState.INTERRUPTED,
    }
)

# A deploy in flight passes through these, in this order, before it is live.
IN_FLIGHT = (
    ReleaseState.QUEUED,
    ReleaseState.BUILDING,
    ReleaseState.RELEASING,
    ReleaseState.BOOTING,
    ReleaseState.HEALTH_CHECKING,
    ReleaseState.CANARY,
    ReleaseState.SWITCHING,
    ReleaseState.DRAINING,
)

_S = ReleaseState
_ABORT = {_S.FAILED, _S.INTERRUPTED}

ALLOWED: dict[ReleaseState, frozenset[ReleaseState]] = {
    # A rollback or config release reuses an image and skips the build; a rollback inside
    # the bake window takes over the standby slot and skips the boot and the gate too.
    _S.QUEUED: frozenset(
        {_S.BUILDING, _S.RELEASING, _S.BOOTING, _S.SWITCHING, _S.SUPERSEDED} | _ABORT
    ),
    # recreate stops the old slot (draining) before booting the new one.
    _S.BUILDING: frozenset({_S.RELEASING, _S.BOOTING, _S.DRAINING} | _ABORT),
    _S.RELEASING: frozenset({_S.BOOTING, _S.DRAINING} | _ABORT),
    _S.BOOTING: frozenset({_S.HEALTH_CHECKING} | _ABORT),
    _S.HEALTH_CHECKING: frozenset({_S.CANARY, _S.SWITCHING} | _ABORT),
    # A canary that passes is promoted by the switch; one that fails is withdrawn.
    _S.CANARY: frozenset({_S.SWITCHING} | _ABORT),
    # With no previous slot there is nothing to drain.
    _S.SWITCHING: frozenset({_S.DRAINING, _S.LIVE} | _ABORT),
    _S.DRAINING: frozenset({_S.LIVE, _S.BOOTING} | _ABORT),
    # A failing bake flips back to the standby slot and fails the live release.
    _S.LIVE: frozenset({_S.RETIRED, _S.STANDBY, _S.FAILED}),
    _S.STANDBY: frozenset({_S.LIVE, _S.RETIRED}),
    _S.RETIRED: frozenset(),
    _S.FAILED: frozenset(),
    _S.SUPERSEDED: frozenset(),
    _S.INTERRUPTED: frozenset(),
}


def is_allowed(was: ReleaseState, state: ReleaseState) -> bool:
    return state in ALLOWED[was]


@dataclass(frozen=True)
class Failure:
    """Why a release ended without going (or staying) live."""

    reason: str
    step: str
    log_tail: str | None = None
