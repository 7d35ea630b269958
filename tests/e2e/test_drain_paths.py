"""End to end, issue 14: no container that served is stopped before it has drained.

Every path that stops a slot is run under steady load through Traefik (keep-alive and new
connections) with long requests in flight on the slot that is about to stop (5 s; 15 s and
25 s where a rollback or a daemon restart comes between): the end of the bake window, a window
cut short by the next push or by a rollback, a flip back after a failed bake, `recreate`, a
daemon stopped during the window, and pushes that come back to back, while the first is
building or in its gate. Each long request must come back 200 from the release it started on,
and the load must see no answer that is not 2xx.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.apprepo import (
    PUSH_TIMEOUT,
    SLOW_GATE,
    git,
    git_push,
    make_app_repo,
    turns_bad_after,
)
from tests.support.checks import (
    assert_no_failures,
    assert_serves,
    container,
    event_at,
    push_ok,
    rejection,
    start_load,
    wait_states,
)
from tests.support.daemon import TempsDaemon
from tests.support.dockercli import container_names
from tests.support.inflight import InFlight, assert_all_answered
from tests.support.load import LoadSummary
from tests.support.wait import poll

pytestmark = pytest.mark.docker

TEMPS_SERVE_ARGS = ["--auth-failures", "100000"]

BAKE = 30.0
PAIRS = 5  # of each kind: the second push while the first builds, and while it is gated
SLOW_BUILD = ("RUN sleep 1.5",)
# For a release whose long requests last longer than the test apps' 15 s drain_timeout.
PATIENT = {**SLOW_GATE, "deploy": {"drain_timeout": 40}}
STATE_TIMEOUT = 120.0
# Healthy for the gate, the switch's confirmation and a few probes of the bake window, then
# 503 for good: the bake window flips traffic back, about 3.5 s after the release went live.
# Long requests started once it is seen live must reach it first (after 8 passes the flip came
# 2.3 s after, and a loaded machine sent them later than that) and still run at the flip. They
# still work then: only the health endpoint goes bad.
TURNS_BAD = turns_bad_after(12)


def push_commit(daemon: TempsDaemon, repo: Path, app: str, commit: str) -> tuple[int, str]:
    """Push a commit of the repo, not its tip, as main."""
    return git_push(repo, daemon.git_url(app), refspec=f"{commit}:refs/heads/main")


def push_head(
    pool: ThreadPoolExecutor, daemon: TempsDaemon, repo: Path, app: str
) -> Future[tuple[int, str]]:
    """Push the repo's tip in the background."""
    return pool.submit(push_commit, daemon, repo, app, git(repo, "rev-parse", "HEAD").strip())


def push_over_long_requests(
    daemon: TempsDaemon,
    repo: Path,
    app: str,
    number: int,
    during: str = "health_checking",
    on: int | None = None,
) -> InFlight:
    """Push release `number` (committed already) and start long requests on release `on`
    (the live one, by default) while the push is `during` (its gate, by default): they are
    in flight at its switch."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pushed = push_head(pool, daemon, repo, app)
        wait_for(daemon, app, number, {during}, pushed)
        batch = InFlight.start(daemon, app, f"v{number - 1 if on is None else on}")
        assert_pushed(pushed, f"v{number}")
    return batch


def release_of(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any] | None:
    for release in daemon.releases(app):
        if release["number"] == number:
            return release
    return None


def wait_for(
    daemon: TempsDaemon, app: str, number: int, states: set[str], push: Future[Any] | None = None
) -> dict[str, Any]:
    """Poll until release `number` is in one of `states` (or the push it came from ended)."""

    def reached(release: dict[str, Any] | None) -> bool:
        return (release is not None and release["state"] in states) or bool(push and push.done())

    found = poll(
        lambda: release_of(daemon, app, number), reached, timeout=STATE_TIMEOUT, interval=0.03
    )
    assert found is not None and found["state"] in states, (
        f"v{number} of {app} never reached {sorted(states)}: {found and found['state']}"
        + (f"\npush: {push.result()}" if push and push.done() else "")
    )
    return found


def assert_pushed(push: Future[tuple[int, str]], version: str) -> str:
    code, output = push.result(timeout=PUSH_TIMEOUT)
    assert code == 0, f"git push of {version} failed (exit {code}, {rejection(output)}):\n{output}"
    return output


def drain_of(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any]:
    """What the records say of release `number`'s drain: seconds and requests it finished."""
    release = daemon.release(app, number)
    drain = (release.get("traffic") or {}).get("drain")
    assert drain is not None, f"v{number} has no drain record: {release.get('traffic')}"
    return dict(drain)


def stopped_after_drain(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any]:
    """Release `number`'s container is gone and its drain record says it finished its work."""
    name = container(app, number)
    gone = poll(lambda: container_names(f"name=^{name}$"), lambda names: not names, timeout=60)
    assert not gone, f"{name} still exists: {gone}"
    drain = drain_of(daemon, app, number)
    assert drain["complete"], f"v{number} was stopped before it drained: {drain}"
    return drain


def finish(load_summary: LoadSummary, batches: list[InFlight]) -> None:
    assert_all_answered(batches)
    assert_no_failures(load_summary)


def push_v2_over_long_requests(
    daemon: TempsDaemon,
    repo: Path,
    app: str,
    v2: dict[str, Any],
    states: list[tuple[int, str]],
    drained: int,
    **long: Any,
) -> dict[str, Any]:
    """Under load, push v2 (`v2`: make_app_repo options) over long requests (`long`: where
    push_over_long_requests starts them) and wait for `states`. Every long request and the
    load must come back clean; the drain record of release `drained`, once it is gone."""
    load = start_load(daemon, app)
    try:
        make_app_repo(repo, "v2", **v2)
        batches = [push_over_long_requests(daemon, repo, app, 2, **long)]
        wait_states(daemon, app, states, timeout=30)
        drain = stopped_after_drain(daemon, app, drained)
    finally:
        summary = load.stop()
    finish(summary, batches)
    return drain


# --- the standby retired by the next push: back to back, while building and while gated -------


def test_back_to_back_pushes_drain_every_slot_that_served(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app = "dp-pairs"
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(
        daemon, repo, app, "v1", bake=BAKE, slow_seconds=5, dockerfile_extra=SLOW_BUILD,
        settings=SLOW_GATE,
    )  # fmt: skip
    number = 1
    batches: list[InFlight] = []
    overlaps: list[float] = []
    load = start_load(daemon, app)
    try:
        time.sleep(0.5)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for pair in range(2 * PAIRS):
                second_while = "building" if pair < PAIRS else "health_checking"
                first, second = number + 1, number + 2
                commits = {
                    n: make_app_repo(
                        repo, f"v{n}", bake=BAKE, dockerfile_extra=SLOW_BUILD, settings=SLOW_GATE
                    )
                    for n in (first, second)
                }
                pushed = pool.submit(push_commit, daemon, repo, app, commits[first])
                wait_for(daemon, app, first, {second_while}, pushed)
                # Long requests on the live release, which the first push puts on standby
                # and the second push retires while they still run.
                batches.append(InFlight.start(daemon, app, f"v{number}"))
                time.sleep(0.1)
                then = pool.submit(push_commit, daemon, repo, app, commits[second])
                assert_pushed(pushed, f"v{first}")
                # Long requests on the first push's release, retired by the next pair.
                batches.append(InFlight.start(daemon, app, f"v{first}"))
                assert_pushed(then, f"v{second}")
                wait_states(daemon, app, [(second, "live"), (first, "standby")], timeout=30)
                # The second deploy did not wait for the standby's drain: it was building
                # while the long requests on that standby still ran.
                drain = stopped_after_drain(daemon, app, number)
                built_at = event_at(daemon.release(app, second), "building")
                overlaps.append(drain["ended_at"] - built_at)
                number = second
        time.sleep(0.5)
    finally:
        summary = load.stop()
    finish(summary, batches)
    assert all(overlap > 0 for overlap in overlaps), (
        f"a deploy waited for the standby's drain before going live: {overlaps}"
    )
    assert_serves(daemon, app, f"v{number}", number)


# --- the bake window, run to its end, cut short by a rollback, failing ------------------------


def test_the_end_of_the_bake_window_drains_the_standby(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app = "dp-bake-end"
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", bake=1, settings=SLOW_GATE)
    # A 1 s window ends while the long requests on v1 still have seconds to run.
    v2 = {"bake": 1, "settings": SLOW_GATE}
    drain = push_v2_over_long_requests(daemon, repo, app, v2, [(2, "live"), (1, "retired")], 1)
    assert drain["seconds"] > 1.0 and drain["finished"] >= 3, drain
    log = "\n".join(daemon.release(app, 2)["log"])
    assert "-----> v1 drained in" in log and "-----> Stopped v1: drained" in log, log


def test_a_rollback_cutting_the_window_short_drains_the_standby(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app = "dp-rollback"
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", bake=BAKE, settings=SLOW_GATE)
    # 15 s requests on v2: they start in v3's gate and must still run when the rollback,
    # which boots v1 again and gates it, retires v2, however slow the machine.
    push_ok(daemon, repo, app, "v2", bake=BAKE, slow_seconds=15, settings=PATIENT)
    load = start_load(daemon, app)
    try:
        make_app_repo(repo, "v3", bake=BAKE, settings=SLOW_GATE)
        batches = [push_over_long_requests(daemon, repo, app, 3)]
        wait_states(daemon, app, [(3, "live"), (2, "standby")])
        batches.append(InFlight.start(daemon, app, "v3"))
        time.sleep(0.2)
        # Back to v1, which is not the standby: v2 retires while its long requests run, v3
        # goes on standby with its own.
        with daemon.client() as api:
            answer = api.post(
                f"/api/apps/{app}/rollback?wait=true", json={"release": 1}, timeout=120
            )
        assert answer.status_code == 200 and answer.json()["state"] == "live", answer.text
        wait_states(daemon, app, [(4, "live"), (3, "standby"), (2, "retired")])
        drain = stopped_after_drain(daemon, app, 2)
    finally:
        summary = load.stop()
    finish(summary, batches)
    assert drain["finished"] >= 3, drain
    assert_serves(daemon, app, "v1", 4)


def test_a_flip_back_after_a_failed_bake_drains_the_bad_release(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app = "dp-flip"
    daemon.create_app(app)
    repo = tmp_path / app
    settings = {"healthcheck": {"path": "/cgi-bin/health", "interval": 0.3}}
    push_ok(daemon, repo, app, "v1", bake=BAKE, settings=settings, health_cgi="echo; echo ok")
    # Long requests on the release that is about to fail its bake window.
    v2 = {"bake": BAKE, "settings": settings, "health_cgi": TURNS_BAD}
    states = [(2, "failed"), (1, "live")]
    drain = push_v2_over_long_requests(daemon, repo, app, v2, states, 2, during="live", on=2)
    assert drain["finished"] >= 3, drain
    assert_serves(daemon, app, "v1", 1)


# --- recreate, and a daemon that stops during the window -----------------------------------------


def test_recreate_drains_the_live_release_and_the_standby_before_stopping_them(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """recreate has downtime by choice: new requests between the old slots' stop and the new
    one's switch fail, and only those. Requests that reached an old slot never do."""
    daemon = temps_daemon
    app = "dp-recreate"
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1", bake=BAKE, settings=SLOW_GATE)
    load = start_load(daemon, app)
    try:
        make_app_repo(repo, "v2", bake=BAKE, settings=SLOW_GATE)
        batches = [push_over_long_requests(daemon, repo, app, 2)]
        batches.append(InFlight.start(daemon, app, "v2"))
        time.sleep(0.2)
        # v1 on standby and v2 live, both with long requests in flight: recreate stops both.
        push_ok(
            daemon,
            repo,
            app,
            "v3",
            bake=BAKE,
            settings={"deploy": {"strategy": "recreate"}, **SLOW_GATE},
        )
        time.sleep(0.5)
    finally:
        summary = load.stop()
    assert_all_answered(batches)
    v3 = daemon.release(app, 3)
    stopped = [stopped_after_drain(daemon, app, n) for n in (1, 2)]
    booted = event_at(v3, "booting")
    for drain in stopped:
        # Both were drained and gone before the new release's container started.
        assert drain["ended_at"] <= booted, (drain, booted)
        assert drain["finished"] >= 3, drain
    # The downtime recreate chooses: from taking the old slots out of Traefik to the switch.
    # An outcome's time is when the load sent it: on a loaded machine a request sent just
    # before the old slots left reached Traefik after, and was answered by the gap.
    gap = (event_at(v3, "draining") - 0.5, event_at(v3, "live") + 0.5)
    failed = [o for o in load.outcomes() if o.status is None or not 200 <= o.status < 300]
    outside = [o for o in failed if not gap[0] <= load.started_wall + o.at <= gap[1]]
    assert summary.total > 0 and not outside, (
        f"{len(outside)} failures outside the recreate gap {gap}: {outside[:5]}"
    )
    assert all(o.status == 503 for o in failed), f"not the gap's 503: {failed[:5]}"
    assert_serves(daemon, app, "v3", 3)


def test_a_daemon_stopped_in_the_bake_window_drains_the_standby_at_its_next_start(
    busybox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    daemon = TempsDaemon(
        home=tmp_path_factory.mktemp("home-dp-shutdown"), extra_args=TEMPS_SERVE_ARGS
    )
    daemon.start()
    try:
        app = "dp-shutdown"
        daemon.create_app(app)
        repo = tmp_path / app
        # 25 s requests: they must still run on v1 when the daemon is back, however long
        # its stop and start take on a loaded machine (10 s was not always enough in CI); a
        # 2 s gate, so that those started in it reach v1 before the switch.
        push_ok(daemon, repo, app, "v1", bake=BAKE, slow_seconds=25, settings=PATIENT)
        load = start_load(daemon, app)
        try:
            make_app_repo(repo, "v2", bake=BAKE, settings=SLOW_GATE)
            batches = [push_over_long_requests(daemon, repo, app, 2)]
            code, _ = daemon.terminate()
            # uvicorn re-raises the signal once its graceful shutdown is done.
            assert code in (0, -signal.SIGTERM), f"temps serve exited {code} on SIGTERM"
            daemon.restart()
            wait_states(daemon, app, [(2, "live"), (1, "retired")])
            drain = stopped_after_drain(daemon, app, 1)
        finally:
            summary = load.stop()
        finish(summary, batches)
        assert drain["finished"] >= 3, drain
        assert_serves(daemon, app, "v2", 2)
    finally:
        daemon.stop()
