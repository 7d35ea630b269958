"""The health gate: N consecutive 2xx answers from the new slot, judged over plain HTTP.

A probe that cannot connect means "not listening yet" and is bounded by the deadline only;
an answer other than 2xx, or no answer within the timeout, is a failure and counts toward
`unhealthy_threshold` once `grace_period` has passed. Redirects are not followed: they fail.
Each probe is over within its `timeout`, however slowly the app answers, so the gate ends
within one `timeout` of its `deadline`.
The probes come every `recheck_interval` (at most `interval`): a release going through the
gate is in transition, as HAProxy's fastinter has it; `interval` spaces the probes of a
release that serves (the bake window). While nothing listens, the port is tried again every
50 ms (a refused connection costs nothing): the first pass comes as soon as the app listens,
not up to an `interval` later.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline import metrics
from pipeline.app.config import HealthCheck
from pipeline.bounded_http import BadAnswer, NoAnswer, NotListening, get_head
from pipeline.errors import BootFailed, HealthCheckFailed
from pipeline.runtime import ContainerState

Report = Callable[[str], None]
NOT_LISTENING_PAUSE = 0.05  # seconds between tries of a port nothing listens on yet
# A container going through the gate takes a connection at once, or refuses it. One not taken
# within this is to an address nobody holds: a container that died leaves its address on the
# bridge, and a connection to it waits for a reply that never comes (a port published on
# loopback refused it at once). Like a refused one it does not count, and the container's
# state is read again before the next try, so an exit is seen at once.
GATE_CONNECT_SECONDS = 0.5


@dataclass(frozen=True)
class Probe:
    ok: bool
    answered: bool  # False when nothing listened: refused, reset, closed without a response
    detail: str
    # Nothing came back at all: refused, reset, or silent until the timeout. From a node that
    # is lost but not yet declared down, this is all a probe gets (`pipeline.steps.replicas`).
    silent: bool = False


def probe(url: str, timeout: float, connect_timeout: float = math.inf) -> Probe:
    """One probe, over within `timeout` whatever the app does; only the status is read. A
    connection not taken within `connect_timeout` is nothing listening."""
    try:
        answer = get_head(url, timeout, connect_timeout=connect_timeout)
    except NotListening as exc:
        return Probe(False, False, f"not listening ({exc})", silent=True)
    except NoAnswer as exc:
        return Probe(False, True, str(exc), silent=True)
    except BadAnswer as exc:
        return Probe(False, True, str(exc))
    ok = 200 <= answer.status < 300
    return Probe(ok, True, f"HTTP {answer.status}")


def wait_until_healthy(
    base_url: str,
    check: HealthCheck,
    container_state: Callable[[], ContainerState],
    report: Report,
) -> None:
    """Return once `healthy_threshold` probes in a row pass; raise why it did not otherwise."""
    url = base_url + check.path
    started = time.monotonic()
    passes = failures = 0
    last = "no probe yet"
    while True:
        state = container_state()
        if state.stopped:
            raise BootFailed(f"container exited with code {state.exit_code} during boot")
        result = probe(url, check.timeout, GATE_CONNECT_SECONDS)
        metrics.health_probes.inc(
            "pass" if result.ok else "fail" if result.answered else "not_listening"
        )
        elapsed = time.monotonic() - started
        last = result.detail
        if result.ok:
            passes, failures = passes + 1, 0
            report(f"health {check.path}: {result.detail} ({passes}/{check.healthy_threshold})")
            if passes >= check.healthy_threshold:
                return
        else:
            passes = 0
            if result.answered and elapsed >= check.grace_period:
                failures += 1
                report(
                    f"health {check.path}: {result.detail} "
                    f"(failure {failures}/{check.unhealthy_threshold})"
                )
                if failures >= check.unhealthy_threshold:
                    raise HealthCheckFailed(
                        f"health check {check.path} failed {failures} times in a row: {last}"
                    )
        pause = check.pause_after(transitional=True)  # the gate: a release going up
        if not result.answered:
            pause = min(pause, NOT_LISTENING_PAUSE)
        if elapsed + pause > check.deadline:
            if not result.answered:
                raise HealthCheckFailed(
                    f"app never answered on its port within {check.deadline:g}s "
                    f"(does it listen on $PORT?)"
                )
            raise HealthCheckFailed(
                f"not healthy within {check.deadline:g}s: last probe {check.path} {last}"
            )
        time.sleep(pause)
