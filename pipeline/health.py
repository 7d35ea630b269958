"""The health gate: N consecutive 2xx answers from the new slot, judged over plain HTTP.

A probe that cannot connect means "not listening yet" and is bounded by the deadline only;
an answer other than 2xx, or no answer within the timeout, is a failure and counts toward
`unhealthy_threshold` once `grace_period` has passed. Redirects are not followed: they fail.
After a counted failure the next probes come every `recheck_interval` until the run of
failures ends one way or the other.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from pipeline import metrics
from pipeline.appconfig import HealthCheck
from pipeline.errors import BootFailed, HealthCheckFailed
from pipeline.runtime import ContainerState

Report = Callable[[str], None]


@dataclass(frozen=True)
class Probe:
    ok: bool
    answered: bool  # False when nothing listened: refused, reset, closed without a response
    detail: str


def probe(client: httpx.Client, url: str, timeout: float) -> Probe:
    try:
        response = client.get(url, timeout=timeout)
    except httpx.TimeoutException:
        return Probe(False, True, f"no answer within {timeout:g}s")
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        return Probe(False, False, f"not listening ({type(exc).__name__})")
    ok = 200 <= response.status_code < 300
    return Probe(ok, True, f"HTTP {response.status_code}")


@functools.cache
def probe_client() -> httpx.Client:
    """One client for every probe: making one costs ~20 ms (its TLS context), a probe ~1 ms.

    No keep-alive: an idle probe connection would count as a request in flight at drain.
    """
    return httpx.Client(
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"Connection": "close", "User-Agent": "temps-health"},
    )


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
    client = probe_client()
    while True:
        state = container_state()
        if state.stopped:
            raise BootFailed(f"container exited with code {state.exit_code} during boot")
        result = probe(client, url, check.timeout)
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
        pause = check.pause_after(failures > 0)
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
