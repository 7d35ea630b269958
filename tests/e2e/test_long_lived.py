"""End to end, connections that outlast a deploy: event streams held by a leaving release
through its drain_timeout, then handed over to the live release a few at a time, oldest first,
over handover_window, after the app's handover_signal. The real daemon, dockerd, Traefik and
`git push`; the app is a Python stdlib server of event streams (tests/support/sse).

What a user checks: no stream is cut before drain_timeout; new connections go to the new
release from the switch on; the cut streams end spread over the window, not in one second,
and each reconnects to the live release; the app was told its budget first. With an hours
long drain_timeout, deploys and a rollback still go through, every leaving slot is listed
(API and `temps ps`), and past three leaving releases the oldest hands over early. Plain
requests to the app meanwhile: not one non-2xx.

End times are printed as a histogram; deadlines are generous, no speed is asserted.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git_push
from tests.support.checks import assert_no_failures, start_load
from tests.support.daemon import MANY_FAILURES, TEMPS_BIN, TempsDaemon, container_name
from tests.support.dockercli import container_names
from tests.support.load import LoadGenerator
from tests.support.sse import (
    Stream,
    Streams,
    ended,
    ensure_sse_image,
    histogram,
    make_sse_repo,
    per_second,
    sse_toml,
    wait_for,
)
from tests.support.stackimages import STACK_IMAGES

pytestmark = pytest.mark.docker

TEMPS_SERVE_ARGS = ["--base-images", STACK_IMAGES, *MANY_FAILURES]
CLIENTS = 200
DRAIN = 20.0  # drain_timeout of the first test
WINDOW = 10.0  # its handover_window
BAKE = 2.0
SLACK = 1.0  # how early a stream may end before drain_timeout (clocks, Traefik's own steps)
SHARE_SLACK = 1.5  # a loaded CI may bunch the ends a little
LOAD_RATE = 40.0  # plain requests per second beside the streams
DEPLOY_DEADLINE = 120.0
ROLLBACK_DEADLINE = 120.0  # far below the 2 h drain it must not wait for
GROUP = 20  # streams per release in the second test
SHORT_WINDOW = 2.0  # its handover_window


@pytest.fixture(scope="module")
def sse_image() -> str:
    return ensure_sse_image()


def push(daemon: TempsDaemon, repo: Path, app: str, image: str, version: str, toml: str) -> None:
    make_sse_repo(repo, image, version, toml)
    code, output = git_push(repo, daemon.git_url(app), timeout=DEPLOY_DEADLINE)
    assert code == 0, f"push of {version}: exit {code}\n{output}"


def wait_serves(daemon: TempsDaemon, app: str, release: str) -> None:
    def answered() -> bool:
        response = daemon.get_app_page(app)
        return response.status_code == 200 and response.headers.get("x-temps-release") == release

    wait_for(answered, 60, f"{app} served by {release}")


def first_answer_from(load: LoadGenerator, version: str) -> float:
    """When the first plain request that `version` answered was sent (epoch seconds)."""
    found = [o.at for o in load.outcomes() if o.version == version]
    assert found, f"no plain request was answered by {version}"
    return load.started_wall + found[0]


def leaving(daemon: TempsDaemon, app: str) -> list[dict[str, Any]]:
    with daemon.client() as api:
        answer = api.get(f"/api/apps/{app}/formation")
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["leaving"]
    return found


def wait_leaving(
    daemon: TempsDaemon, app: str, releases: list[str], held: int = GROUP
) -> list[dict[str, Any]]:
    """The formation's `leaving` settles on `releases`, each holding `held` streams or more."""
    seen: list[dict[str, Any]] = []

    def listed() -> bool:
        nonlocal seen
        seen = leaving(daemon, app)
        holding = all(left["connections"] >= held for left in seen)
        return [left["release"] for left in seen] == releases and holding

    try:
        wait_for(listed, 60, f"leaving {releases}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last seen {seen}") from None
    return seen


def temps_ps(daemon: TempsDaemon, app: str) -> str:
    done = subprocess.run(
        [str(TEMPS_BIN), "ps", app],
        env=daemon.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_open(streams: list[Stream], what: str) -> None:
    gone = ended(streams)
    assert not gone, f"{len(gone)} {what} streams ended: {gone[:3]}"


def assert_gone(name: str) -> None:
    wait_for(lambda: not container_names(f"name=^{name}$"), 60, f"{name} removed")


def test_streams_outlast_drain_timeout_then_are_handed_over_spread_over_the_window(
    temps_daemon: TempsDaemon, sse_image: str, tmp_path: Path
) -> None:
    app, repo = "streams", tmp_path / "streams"
    temps_daemon.create_app(app)
    toml = sse_toml(
        drain_timeout=DRAIN, handover_window=WINDOW, handover_signal="SIGUSR1", bake=BAKE
    )
    push(temps_daemon, repo, app, sse_image, "v1", toml)
    wait_serves(temps_daemon, app, "v1")
    load = start_load(temps_daemon, app, rate=LOAD_RATE)
    try:
        with Streams(temps_daemon.http_port, f"{app}.{temps_daemon.domain}") as clients:
            streams = clients.open(CLIENTS)
            assert {s.release for s in streams} == {"v1"}, [s.release for s in streams][:5]
            push(temps_daemon, repo, app, sse_image, "v2", toml)
            wait_for(lambda: "v2" in load.summary().versions, 30, "a plain request on v2")
            switched = first_answer_from(load, "v2")
            newer = clients.open(10)
            assert {s.release for s in newer} == {"v2"}
            last = switched + BAKE + DRAIN + WINDOW + 60
            wait_for(
                lambda: all(s.reconnected_status is not None for s in streams),
                last - time.time(),
                "every stream handed over and reconnected",
            )
            assert_open(newer, "v2")
    finally:
        summary = load.stop()
    print(summary.line())
    assert_no_failures(summary)
    late = [o for o in load.outcomes() if load.started_wall + o.at > switched + 0.2]
    assert {o.version for o in late} == {"v2"}, "a request after the switch reached v1"

    ends = sorted(s.ended_at for s in streams if s.ended_at is not None)
    first, final = ends[0], ends[-1]
    counts = per_second(ends, first)
    print(
        f"{CLIENTS} streams on v1; v2 answered from {time.strftime('%X', time.gmtime(switched))}"
        f"; first end {first - switched:.1f} s after the switch, last {final - switched:.1f} s;"
        f" ends per second from the first:\n{histogram(counts)}"
    )
    assert first >= switched + DRAIN - SLACK, f"a stream ended {first - switched:.1f} s in"
    share = CLIENTS / WINDOW
    assert max(counts.values()) <= share * SHARE_SLACK, counts
    assert final - first >= 0.7 * WINDOW, f"the ends span {final - first:.1f} s only"
    assert not [s for s in streams if s.clean], "the app closed a stream itself"
    landed = {s.reconnected_release for s in streams}
    assert landed == {"v2"}, [(s.reconnected_status, s.error) for s in streams][:5]
    told = [s for s in streams if f"handover {WINDOW:g}" in s.handover_events]
    print(f"{len(told)} of {CLIENTS} streams got `handover {WINDOW:g}` before their end")
    assert len(told) == CLIENTS, [s.events[-3:] for s in streams if s not in told][:5]

    assert_gone(container_name(app, 1))
    # Recorded before the container is stopped: there once it is gone.
    drain = (temps_daemon.release(app, 1).get("traffic") or {}).get("drain")
    assert drain is not None, temps_daemon.release(app, 1).get("traffic")
    assert drain["handed_over"] == CLIENTS, drain
    assert drain["complete"] is True, drain


def test_hours_long_drains_are_listed_let_deploys_through_and_the_oldest_hands_over_first(
    temps_daemon: TempsDaemon, sse_image: str, tmp_path: Path
) -> None:
    app, repo = "hours", tmp_path / "hours"
    host = f"{app}.{temps_daemon.domain}"
    temps_daemon.create_app(app)
    toml = sse_toml(
        drain_timeout="2h", handover_window=SHORT_WINDOW, handover_signal="SIGUSR1", bake=1
    )
    push(temps_daemon, repo, app, sse_image, "v1", toml)
    wait_serves(temps_daemon, app, "v1")
    load = start_load(temps_daemon, app, rate=LOAD_RATE)
    with Streams(temps_daemon.http_port, host) as clients:
        try:
            on = bounded_by_three(temps_daemon, app, repo, sse_image, toml, clients)
        finally:
            summary = load.stop()
            destroyed = destroy(temps_daemon, app)
        print(summary.line())
        assert_no_failures(summary)
        assert destroyed.status_code == 200, destroyed.text
        rest = on["v2"] + on["v3"] + on["v4"]
        wait_for(lambda: len(ended(rest)) == len(rest), 60, "the rest handed over on destroy")
    for number in (2, 3, 4, 5):
        assert_gone(container_name(app, number))


def bounded_by_three(
    daemon: TempsDaemon, app: str, repo: Path, image: str, toml: str, clients: Streams
) -> dict[str, list[Stream]]:
    """v1 to v3 pushed, then a rollback (v4), then v5, each release's own streams held by
    it: the streams on each release, by release."""
    on: dict[str, list[Stream]] = {"v1": clients.open(GROUP)}
    for version in ("v2", "v3"):
        started = time.monotonic()
        push(daemon, repo, app, image, version, toml)
        print(f"{version} live {time.monotonic() - started:.1f} s after its push")
        wait_serves(daemon, app, version)
        on[version] = clients.open(GROUP)
    for version, streams in on.items():
        assert {s.release for s in streams} == {version}
    listed = wait_leaving(daemon, app, ["v1", "v2"])
    assert all(left["handover_at"] - left["since"] >= 7200 - 1 for left in listed), listed
    assert not any(left["handing_over"] for left in listed), listed
    shown = temps_ps(daemon, app)
    print(shown)
    rows = [line for line in shown.splitlines() if line.startswith("leaving")]
    assert [row.split()[1:3] for row in rows] == [
        [container_name(app, 1), "v1"],
        [container_name(app, 2), "v2"],
    ], shown
    # Two hours, less the seconds since each drain began: "2h00m" or "1h59m", as rounded.
    soon = re.compile(r"handover in (2h00m|1h5\dm)$")
    assert all(f"{GROUP} connections" in row and soon.search(row) for row in rows), shown
    assert_open(clients.streams, "held")

    started = time.monotonic()
    with daemon.client() as api:
        rolled = api.post(f"/api/apps/{app}/rollback?wait=true", json={}, timeout=ROLLBACK_DEADLINE)
    took = time.monotonic() - started
    print(f"rollback to v2 live as v4 in {took:.1f} s, beside two draining slots")
    assert rolled.status_code == 200 and rolled.json()["state"] == "live", rolled.text
    assert took < ROLLBACK_DEADLINE
    wait_serves(daemon, app, "v4")
    on["v4"] = clients.open(GROUP)
    assert {s.release for s in on["v4"]} == {"v4"}
    wait_leaving(daemon, app, ["v1", "v2", "v3"])
    assert_open(clients.streams, "held")

    # A fourth leaving release holding connections: the oldest hands over now.
    push(daemon, repo, app, image, "v5", toml)
    wait_for(lambda: len(ended(on["v1"])) == GROUP, 90, "v1's streams handed over")
    wait_for(lambda: all(s.reconnected_status is not None for s in on["v1"]), 30, "reconnects")
    time.sleep(SHORT_WINDOW)
    assert {s.reconnected_release for s in on["v1"]} == {"v5"}
    assert all(f"handover {SHORT_WINDOW:g}" in s.handover_events for s in on["v1"])
    for version in ("v2", "v3", "v4"):
        assert_open(on[version], version)
    wait_leaving(daemon, app, ["v2", "v3", "v4"])
    assert_gone(container_name(app, 1))
    drain = (daemon.release(app, 1).get("traffic") or {}).get("drain")
    assert drain is not None and drain["handed_over"] == GROUP, drain  # recorded, then stopped
    return on


def destroy(daemon: TempsDaemon, app: str) -> httpx.Response:
    """`DELETE /api/apps/<app>?confirm=<app>`: every leaving slot hands over at once."""
    return httpx.delete(
        f"{daemon.api_url}/api/apps/{app}",
        params={"confirm": app},
        headers={"Authorization": f"Bearer {daemon.admin_token}"},
        timeout=300,
    )


def test_without_a_bake_window_the_pusher_waits_for_requests_not_for_hours_of_streams(
    temps_daemon: TempsDaemon, sse_image: str, tmp_path: Path
) -> None:
    """bake = 0: the old slot drains before the pusher's answer, but only as long as a deliberate
    drain (DELIBERATE_DRAIN_SECONDS, 30 s); its streams stay on it in the background."""
    app, repo = "nobake", tmp_path / "nobake"
    temps_daemon.create_app(app)
    toml = sse_toml(drain_timeout="2h", handover_window=SHORT_WINDOW, bake=0)
    push(temps_daemon, repo, app, sse_image, "v1", toml)
    wait_serves(temps_daemon, app, "v1")
    load = start_load(temps_daemon, app, rate=LOAD_RATE)
    with Streams(temps_daemon.http_port, f"{app}.{temps_daemon.domain}") as clients:
        try:
            streams = clients.open(GROUP // 2)
            make_sse_repo(repo, sse_image, "v2", toml)
            started = time.monotonic()
            code, output = git_push(repo, temps_daemon.git_url(app), timeout=DEPLOY_DEADLINE)
            took = time.monotonic() - started
            print(f"push of v2 answered after {took:.1f} s beside {len(streams)} streams")
            assert code == 0, output
            assert "still holds connections after 30.0s" in output, output
            wait_serves(temps_daemon, app, "v2")
            left = wait_leaving(temps_daemon, app, ["v1"], held=len(streams))
            assert left[0]["handover_at"] - left[0]["since"] >= 7200 - 1, left
            assert_open(streams, "v1")
        finally:
            summary = load.stop()
            destroyed = destroy(temps_daemon, app)
        print(summary.line())
        assert_no_failures(summary)
        assert destroyed.status_code == 200, destroyed.text
        wait_for(lambda: len(ended(streams)) == len(streams), 60, "handed over on destroy")
