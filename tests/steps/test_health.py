"""The health gate (pipeline.steps.health.wait_until_healthy) against a real HTTP server on
loopback that answers a scripted run of statuses, with intervals and deadlines of a fraction
of a second passed in as the app's config would.

What it must hold to: N passes in a row let a release through; N answered failures in a row,
once the grace period is over, stop it; nothing listening is waited for until the deadline
only; a container that exits ends the gate at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from pipeline.app.config import HealthCheck
from pipeline.errors import BootFailed, HealthCheckFailed
from pipeline.runtime import ContainerState
from pipeline.steps.health import GATE_CONNECT_SECONDS, wait_until_healthy
from tests.support.scripted import ScriptedServer

RUNNING = ContainerState("running", 0)
# Loopback answers in a few ms, but a loaded machine can stall a thread for a second or two:
# bounds on how long the gate took leave that much room.
STALL = 3.0
QUICK = {"interval": 0.01, "recheck_interval": 0.01, "timeout": 0.2}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gate(
    url: str, check: HealthCheck, state: Callable[[], ContainerState] = lambda: RUNNING
) -> list[str]:
    """Run the gate; what it reported, line by line."""
    said: list[str] = []
    wait_until_healthy(url, check, state, said.append)
    return said


def test_three_passes_in_a_row_let_the_release_through() -> None:
    with ScriptedServer([200]) as app:
        said = gate(app.url, HealthCheck(path="/health", **QUICK))
    assert said == [f"health /health: HTTP 200 ({n}/3)" for n in (1, 2, 3)]
    assert app.paths == ["/health"] * 3


def test_a_failure_starts_the_count_of_passes_again() -> None:
    with ScriptedServer([200, 200, 503, 204, 200, 200]) as app:
        said = gate(app.url, HealthCheck(path="/up", **QUICK))
    assert said == [
        "health /up: HTTP 200 (1/3)",
        "health /up: HTTP 200 (2/3)",
        "health /up: HTTP 503 (failure 1/3)",
        "health /up: HTTP 204 (1/3)",
        "health /up: HTTP 200 (2/3)",
        "health /up: HTTP 200 (3/3)",
    ]
    assert len(app.paths) == 6


@pytest.mark.parametrize(
    ("statuses", "threshold", "last", "probes"),
    [([500], 2, "HTTP 500", 2), ([200, 404], 3, "HTTP 404", 4), ([302], 1, "HTTP 302", 1)],
    ids=["server-error", "after-a-pass", "redirect-not-followed"],
)
def test_failures_in_a_row_stop_the_release(
    statuses: list[int], threshold: int, last: str, probes: int
) -> None:
    check = HealthCheck(path="/health", unhealthy_threshold=threshold, **QUICK)
    with ScriptedServer(statuses) as app, pytest.raises(HealthCheckFailed) as failed:
        gate(app.url, check)
    assert str(failed.value) == f"health check /health failed {threshold} times in a row: {last}"
    assert app.paths == ["/health"] * probes  # a redirect is not followed to /elsewhere


def test_failures_within_the_grace_period_do_not_count() -> None:
    check = HealthCheck(unhealthy_threshold=1, grace_period=30, **QUICK)
    with ScriptedServer([500, 500, 500, 200]) as app:
        said = gate(app.url, check)
    assert said == [f"health /: HTTP 200 ({n}/3)" for n in (1, 2, 3)]  # no failure reported
    assert len(app.paths) == 6


def test_an_app_that_answers_badly_until_the_deadline_fails_on_its_last_answer() -> None:
    # A timeout a loaded machine never reaches: the 500 is the last answer, not a timeout.
    quick = QUICK | {"timeout": 1.5, "interval": 0.05, "recheck_interval": 0.05}
    check = HealthCheck(path="/health", unhealthy_threshold=100, deadline=2.0, **quick)
    started = time.monotonic()
    with ScriptedServer([500]) as app, pytest.raises(HealthCheckFailed) as failed:
        gate(app.url, check)
    assert len(app.paths) > 1
    assert str(failed.value) == "not healthy within 2s: last probe /health HTTP 500"
    assert time.monotonic() - started < 2.0 + check.timeout + STALL


def test_nothing_listening_is_waited_for_until_the_deadline_and_never_counts_as_a_failure() -> None:
    check = HealthCheck(unhealthy_threshold=1, deadline=0.4, **QUICK)
    started = time.monotonic()
    said: list[str] = []
    with pytest.raises(HealthCheckFailed) as failed:
        wait_until_healthy(f"http://127.0.0.1:{closed_port()}", check, lambda: RUNNING, said.append)
    assert str(failed.value) == (
        "app never answered on its port within 0.4s (does it listen on $PORT?)"
    )
    assert said == []
    assert 0.3 < time.monotonic() - started < 0.4 + check.timeout + STALL


def test_an_app_that_listens_late_passes_soon_after_it_listens() -> None:
    """While nothing listens, the port is tried every 50 ms: not one `interval` (here 10 s)."""
    check = HealthCheck(interval=10, recheck_interval=10, timeout=0.5, healthy_threshold=1)
    app = ScriptedServer([200], listening=False)
    late = threading.Timer(0.3, app.start)
    late.start()
    started = time.monotonic()
    try:
        said = gate(app.url, check)
        took = time.monotonic() - started
    finally:
        late.cancel()
        late.join(5)
        app.close()
    assert said == ["health /: HTTP 200 (1/1)"]
    assert 0.3 <= took < 0.3 + STALL


def test_a_container_that_has_exited_ends_the_gate_before_any_probe() -> None:
    with ScriptedServer([200]) as app, pytest.raises(BootFailed) as failed:
        gate(app.url, HealthCheck(**QUICK), lambda: ContainerState("exited", 3))
    assert str(failed.value) == "container exited with code 3 during boot"
    assert app.paths == []


def test_a_container_gone_from_its_address_ends_the_gate_long_before_a_probe_timeout() -> None:
    """Its address takes no connection any more: given up as nothing listening, well before
    the probe's own timeout, and the container's state is read at once."""
    states = iter([RUNNING, ContainerState("exited", 1)])
    with socket.socket() as listener, socket.socket() as first:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        first.connect(listener.getsockname())  # a full queue: every other SYN is dropped
        check = HealthCheck(interval=1, recheck_interval=1, timeout=60)
        started = time.monotonic()
        with pytest.raises(BootFailed, match="code 1"):
            gate(f"http://127.0.0.1:{listener.getsockname()[1]}", check, lambda: next(states))
    assert time.monotonic() - started < GATE_CONNECT_SECONDS + STALL


def test_a_container_that_exits_during_the_gate_ends_it_at_its_next_probe() -> None:
    states = iter([RUNNING, RUNNING, ContainerState("restarting", 137)])
    with ScriptedServer([200]) as app, pytest.raises(BootFailed, match="code 137"):
        gate(app.url, HealthCheck(healthy_threshold=5, **QUICK), lambda: next(states))
    assert len(app.paths) == 2
