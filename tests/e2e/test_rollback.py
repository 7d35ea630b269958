"""End to end, issue 4: releases, instant rollback, the bake window, app config, the CLI.

Rollbacks run under a steady load through Traefik while a tight loop of requests waits for the
old version to be served again, inside the bake window (a route flip to the standby container)
and outside it (a boot of the old image through the full gate); none of its answers may fail.
How long each takes is bench/rollback.py's to measure.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo, turns_bad_after
from tests.support.checks import (
    ContainerEvent,
    ContainerEvents,
    FirstSeen,
    api_post,
    assert_no_failures,
    assert_only_containers,
    assert_serves,
    container,
    event_at,
    measure,
    push_ok,
    serves,
    start_load,
    state_path,
    under_load,
    url_of,
    wait_states,
)
from tests.support.daemon import MANY_FAILURES, TEMPS_BIN, TempsDaemon
from tests.support.dockercli import app_images, docker, on_bridge
from tests.support.load import LoadSummary
from tests.support.wait import poll

pytestmark = pytest.mark.docker

# This module pushes far more often than the default limit of failed logins lets one address.
TEMPS_SERVE_ARGS = MANY_FAILURES

BAKE = 10.0
RUNS = 4
HEALTH_CGI = "/cgi-bin/health"
# Healthy for the first 6 probes (3 for the gate, the switch's confirmation through Traefik,
# the first bake probes), then 503 for good.
TURNS_BAD = turns_bad_after(6)


def rollback(
    daemon: TempsDaemon, app: str, body: dict[str, Any] | None = None
) -> Callable[[], httpx.Response]:
    """`POST /api/apps/<app>/rollback?wait=true`, to be sent by `measure`."""
    return lambda: api_post(daemon, f"/api/apps/{app}/rollback?wait=true", body)


def settled(daemon: TempsDaemon, app: str, standby: bool) -> list[dict[str, Any]]:
    """The app's releases once the newest is live and (if asked) another one is on standby."""

    def ready(releases: list[dict[str, Any]]) -> bool:
        found = {r["state"] for r in releases}
        return releases[0]["state"] == "live" and (not standby or "standby" in found)

    releases = poll(lambda: daemon.releases(app), ready, timeout=30, interval=0.1)
    assert ready(releases), [(r["number"], r["state"]) for r in releases]
    return releases


def env_of(name: str) -> dict[str, str]:
    out = docker("exec", name, "env", timeout=30)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


# --- rollback under load, inside and outside the bake window ---------------------------------


Check = Callable[[dict[str, Any], dict[str, Any]], None]


def roll_back_repeatedly(
    daemon: TempsDaemon, app: str, previous: str, check: Check
) -> tuple[LoadSummary, list[ContainerEvent]]:
    """RUNS rollbacks under load, each to the release in state `previous` (standby or retired),
    each watched by a tight loop of requests until the old page is served again, with no answer
    that is not 2xx; `check(answer, previous release)` after each. What the load saw, and what
    dockerd did to the app's containers meanwhile."""
    content = {1: "v1", 2: "v2"}  # release number -> the page it serves
    with ContainerEvents(app) as watch:
        with under_load(daemon, app) as load:
            for _ in range(RUNS):
                releases = settled(daemon, app, standby=previous == "standby")
                live = releases[0]
                was = next(r for r in releases if r["state"] == previous)
                target = content[was["number"]]
                assert serves(daemon, app)[1] == content[live["number"]]
                seen = FirstSeen(daemon, app, target)
                answer, _ = measure(rollback(daemon, app), seen)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert not seen.bad, f"the probe loop got {seen.bad[:5]}"
                content[body["number"]] = target
                assert (body["state"], body["source"], body["rollback_of"]) == (
                    "live",
                    "rollback",
                    was["number"],
                ), body
                check(body, was)
                assert_serves(daemon, app, target, body["number"])
        events = watch.events()
    return load.summary(), events


def test_rollback_inside_the_bake_window_flips_to_the_standby_container(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-instant"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=BAKE)
    push_ok(temps_daemon, repo, app, "v2", bake=BAKE)
    wait_states(temps_daemon, app, [(2, "live"), (1, "standby")])

    def flipped(body: dict[str, Any], standby: dict[str, Any]) -> None:
        # The standby container itself serves again: nothing was built or booted.
        assert body["container"] == standby["container"], (body, standby)
        # No build, no boot, no gate: one probe, then straight to the switch.
        path = state_path(temps_daemon.release(app, body["number"]))
        assert path == ["queued", "switching", "live"], path

    summary, events = roll_back_repeatedly(temps_daemon, app, "standby", flipped)
    assert_no_failures(summary)
    started = [(e.action, e.name) for e in events]
    assert not [e for e in started if e[0] in ("create", "start")], (
        f"a rollback inside the bake window started a container: {started}"
    )
    history = temps_daemon.releases(app)
    rollbacks = [r for r in history if r["source"] == "rollback"]
    assert len(rollbacks) == RUNS, [(r["number"], r["source"]) for r in history]
    assert all(r["rollback_of"] is not None for r in rollbacks), rollbacks
    assert history[0]["state"] == "live" and history[0]["source"] == "rollback"


def test_rollback_outside_the_bake_window_boots_the_old_image(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-boot"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=0)
    push_ok(temps_daemon, repo, app, "v2", bake=0)
    wait_states(temps_daemon, app, [(2, "live"), (1, "retired")])
    images = {r["number"]: r["image"] for r in temps_daemon.releases(app)}

    def booted(body: dict[str, Any], previous: dict[str, Any]) -> None:
        number = body["number"]
        images[number] = body["image"]
        assert body["image"] == previous["image"], "the rollback did not reuse the image"
        assert body["container"] == container(app, number), body
        path = state_path(temps_daemon.release(app, number))
        assert "building" not in path and "health_checking" in path, path

    summary, events = roll_back_repeatedly(temps_daemon, app, "retired", booted)
    assert_no_failures(summary)
    created = sorted({e.name for e in events if e.action == "start"})
    expected = sorted(container(app, n) for n in range(3, 3 + RUNS))
    assert created == expected, f"containers started by the rollbacks: {created}"
    assert set(images.values()) == {images[1], images[2]}, f"images used: {images}"
    assert_only_containers(app, [container(app, 2 + RUNS)])


def test_rollback_to_a_standby_slot_that_no_longer_answers_boots_its_image(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-standby-bad"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=60)
    push_ok(temps_daemon, repo, app, "v2", bake=60)
    wait_states(temps_daemon, app, [(2, "live"), (1, "standby")])
    # The idle standby slot goes bad: its health check now answers 404.
    docker("exec", container(app, 1), "rm", "/www/health", timeout=30)

    load = start_load(temps_daemon, app)
    try:
        time.sleep(0.5)
        answer = api_post(temps_daemon, f"/api/apps/{app}/rollback?wait=true")
        time.sleep(0.5)
    finally:
        summary = load.stop()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["number"], body["state"], body["rollback_of"]) == (3, "live", 1), body
    # Not the broken standby container: a fresh one from the same image, through the gate.
    assert body["container"] == container(app, 3), body
    assert body["image"] == temps_daemon.release(app, 1)["image"], body
    release = temps_daemon.release(app, 3)
    path = state_path(release)
    assert "booting" in path and "health_checking" in path, path
    said = "-----> v1 is on standby but health /health gave HTTP 404: booting its image instead"
    assert said in release["log"], release["log"]
    assert temps_daemon.release(app, 1)["state"] == "retired"
    assert_no_failures(summary)
    assert_serves(temps_daemon, app, "v1", 3)


def test_rollback_after_the_bake_window_has_ended_boots_the_old_image(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-after-bake"
    bake = 1.5
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=bake)
    push_ok(temps_daemon, repo, app, "v2", bake=bake)
    wait_states(temps_daemon, app, [(2, "live"), (1, "retired")], timeout=bake + 15)
    assert_only_containers(app, [container(app, 2)])

    with under_load(temps_daemon, app) as load:
        seen = FirstSeen(temps_daemon, app, "v1")
        answer, _ = measure(rollback(temps_daemon, app, {"release": 1}), seen)
    summary = load.summary()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["number"], body["state"], body["source"], body["rollback_of"]) == (
        3,
        "live",
        "rollback",
        1,
    ), body
    assert body["container"] == container(app, 3), "no new container for the old image"
    assert_no_failures(summary)
    assert_serves(temps_daemon, app, "v1", 3)


# --- the bake window switches back on its own ----------------------------------------------------


def test_release_failing_health_in_the_bake_window_is_switched_back(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-bake-fails"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=BAKE)

    make_app_repo(
        repo,
        "v2",
        bake=BAKE,
        health_cgi=TURNS_BAD,
        settings={"healthcheck": {"path": HEALTH_CGI}},
    )
    load = start_load(temps_daemon, app)
    try:
        time.sleep(0.5)
        code, output = git_push(repo, temps_daemon.git_url(app))
        assert code == 0, f"v2 did not pass its gate:\n{output}"
        states = wait_states(temps_daemon, app, [(2, "failed"), (1, "live")], timeout=BAKE + 10)
        time.sleep(1.0)
    finally:
        summary = load.stop()

    bad = temps_daemon.release(app, 2)
    good = temps_daemon.release(app, 1)
    assert_no_failures(summary)
    assert summary.versions == ["v1", "v2"], f"v2 never served: {summary.per_version}"
    last = [o.version for o in load.outcomes()[-20:]]
    assert set(last) == {"v1"}, f"the load did not end on v1: {last}"
    assert states[:2] == [(2, "failed"), (1, "live")], states
    assert bad["failed_step"] == "bake", bad
    assert "bake" in bad["failure_reason"] and "503" in bad["failure_reason"], bad
    assert state_path(bad)[-2:] == ["live", "failed"], state_path(bad)
    assert state_path(good)[-3:] == ["live", "standby", "live"], state_path(good)
    assert_serves(temps_daemon, app, "v1", 1)
    assert_only_containers(app, [container(app, 1)])


def test_a_replica_restarted_in_the_bake_window_is_probed_where_it_runs_again(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app, bake = "r-bake-restart", 15.0
    temps_daemon.create_app(app)
    with temps_daemon.client() as api:
        assert api.patch(f"/api/apps/{app}/formation", json={"web": 2}).status_code == 200
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=bake)
    push_ok(temps_daemon, repo, app, "v2", bake=bake)
    wait_states(temps_daemon, app, [(2, "live"), (1, "standby")])
    web = temps_daemon.app(app)["live_release"]["slot"]["web"]
    name, old_url = web[1]["container"], url_of(web[1])
    assert on_bridge(name) == (web[1]["address"], web[1]["endpoint"])

    # The app's process dies; Docker's restart policy starts the container again: a new
    # endpoint on the bridge, at the same address or another (`docker kill` would not do:
    # Docker takes it for a stop by hand, and leaves it). The exec dies with the container,
    # and may say so: its exit status means nothing here.
    docker("exec", name, "sh", "-c", "kill -KILL $(pidof httpd)", timeout=30, check=False)
    address, endpoint = poll(
        lambda: on_bridge(name), lambda seen: seen[1] not in ("", web[1]["endpoint"]), timeout=30
    )
    assert endpoint not in ("", web[1]["endpoint"]), f"{name} did not start again"
    url = f"http://{address}:{web[1]['host_port']}"

    def log() -> list[str]:
        return [str(line) for line in temps_daemon.release(app, 2)["log"]]

    probed = poll(log, lambda lines: any(f"at {url}: health /health: HTTP 200" in line
                                         for line in lines), timeout=30)  # fmt: skip
    assert any(f"at {url}: health /health: HTTP 200" in line for line in probed), "\n".join(probed)
    crash = [line for line in probed if name in line and "(failure 1/3)" in line]
    assert crash, "the crash was not counted:\n" + "\n".join(probed)
    assert not any("(failure 3/3)" in line for line in probed), "\n".join(probed)
    if old_url != url:
        crashed_at = next(i for i, line in enumerate(probed) if name in line and url in line)
        assert not any(old_url in line for line in probed[crashed_at:]), "probed where it was"

    # One crash that came back healthy does not fail the release: the window ends as usual.
    wait_states(temps_daemon, app, [(2, "live"), (1, "retired")], timeout=bake + 30)
    final = log()
    assert any("bake window over: v2 stays live" in line for line in final), "\n".join(final)
    assert not any("switched back" in line for line in final), "\n".join(final)


# Healthy until a file appears in the container, then 503 for good.
BAD_ON_CUE = r"""if [ -e /tmp/bad ]; then
  printf 'Status: 503 Service Unavailable
Content-Type: text/plain

bad
'
else
  printf 'Content-Type: text/plain

ok
'
fi
"""


def test_a_release_gone_bad_stays_live_when_no_standby_container_can_take_over(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app, bake = "r-bake-no-standby", 12.0
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=bake)
    push_ok(temps_daemon, repo, app, "v2", bake=bake, health_cgi=BAD_ON_CUE,
            settings={"healthcheck": {"path": HEALTH_CGI}})  # fmt: skip
    wait_states(temps_daemon, app, [(2, "live"), (1, "standby")])
    # The standby goes bad first (its health check answers 404), then the live release.
    docker("exec", container(app, 1), "rm", "/www/health", timeout=30)
    docker("exec", container(app, 2), "touch", "/tmp/bad", timeout=30)

    def log() -> list[str]:
        return [str(line) for line in temps_daemon.release(app, 2)["log"]]

    refused = poll(log, lambda lines: any("can take over" in line for line in lines), timeout=30)
    told = [line for line in refused if "no container of v1 can take over" in line]
    assert told, "\n".join(refused)
    assert "HTTP 503" in told[0] and "HTTP 404" in told[0] and "v2 stays live" in told[0], told
    assert serves(temps_daemon, app)[2] == "v2"  # still routed: a route to nothing is a 503

    # The window ends as any other: the release that serves stays live, the standby retires.
    wait_states(temps_daemon, app, [(2, "live"), (1, "retired")], timeout=bake + 30)
    assert not any("switched back" in line for line in log())


# --- config releases and rollback of a config snapshot --------------------------------------------


def test_rollback_restores_the_config_snapshot_and_secrets_stay_hidden(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-config"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1", bake=0)

    def set_env(env: dict[str, str | None]) -> dict[str, Any]:
        with temps_daemon.client() as api:
            answer = api.patch(f"/api/apps/{app}/config?wait=true", json={"env": env}, timeout=120)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["release"] and body["release"]["state"] == "live", body
        assert body["release"]["source"] == "config", body
        return body

    one = set_env({"GREETING": "one"})["release"]["number"]
    two = set_env({"GREETING": "two"})["release"]["number"]
    assert (one, two) == (2, 3)
    assert env_of(container(app, two))["GREETING"] == "two"
    assert_serves(temps_daemon, app, "v1", two)

    load = start_load(temps_daemon, app)
    try:
        time.sleep(0.3)
        answer = api_post(temps_daemon, f"/api/apps/{app}/rollback?wait=true", {"release": one})
        time.sleep(0.3)
    finally:
        summary = load.stop()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["state"], body["source"], body["rollback_of"]) == ("live", "rollback", one)
    assert env_of(body["container"])["GREETING"] == "one", "the rollback kept today's GREETING"
    assert_no_failures(summary)
    assert_serves(temps_daemon, app, "v1", body["number"])

    secret = "tok-3f9c2a7b1d8e4f60a5b2c9d1e7f3a4b6"
    changed = set_env({"API_TOKEN": secret})
    running = env_of(changed["release"]["container"])
    assert running["API_TOKEN"] == secret, "the secret did not reach the container"
    shown = changed["env"]["API_TOKEN"]
    assert shown != secret and secret not in shown, f"PATCH echoed the secret: {shown!r}"
    with temps_daemon.client() as api:
        pages = [
            api.get(f"/api/apps/{app}/config"),
            api.get(f"/api/apps/{app}/releases"),
            api.get(f"/api/apps/{app}/releases/{changed['release']['number']}"),
            api.get(f"/api/apps/{app}"),
        ]
    for page in pages:
        assert page.status_code == 200, page.text
        assert secret not in page.text, f"{page.request.url} shows the secret"
        assert secret[:12] not in page.text, f"{page.request.url} shows part of the secret"
    assert "API_TOKEN" in pages[0].json()["env"], pages[0].text
    # The newest N releases, newest first; at most 100.
    with temps_daemon.client() as api:
        newest = api.get(f"/api/apps/{app}/releases", params={"limit": 2})
        refused = [
            api.get(f"/api/apps/{app}/releases", params={"limit": limit}) for limit in (0, 101)
        ]
    every = pages[1].json()
    assert len(every) > 2
    assert [r["number"] for r in newest.json()] == [r["number"] for r in every[:2]]
    assert [answer.status_code for answer in refused] == [422, 422]


def test_rollback_to_a_pruned_image_is_a_conflict(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-pruned"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    keep_one: dict[str, dict[str, object]] = {"deploy": {"keep_releases": 1}}
    for number in (1, 2, 3):
        push_ok(temps_daemon, repo, app, f"v{number}", settings=keep_one)
    live_image = temps_daemon.releases(app)[0]["image"]
    images = poll(lambda: app_images(app), lambda refs: refs == [live_image], timeout=15)
    assert images == [live_image], f"images kept with keep_releases = 1: {images}"

    for body in ({"release": 1}, {"release": 2}, None):
        answer = api_post(temps_daemon, f"/api/apps/{app}/rollback?wait=true", body)
        assert answer.status_code == 409, f"rollback {body}: {answer.status_code} {answer.text}"
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "pruned" in answer.json()["detail"], answer.text
    assert [r["number"] for r in temps_daemon.releases(app)] == [3, 2, 1], "a release was added"
    assert_serves(temps_daemon, app, "v3", 3)


# --- release detail -------------------------------------------------------------------------------


def test_release_detail_has_its_log_and_step_timings(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-detail"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    push_ok(temps_daemon, repo, app, "v1")
    push_ok(temps_daemon, repo, app, "v2")
    release = temps_daemon.release(app, 2)

    log = release["log"]
    assert any(line.startswith("-----> Building") for line in log), log
    assert "health /health: HTTP 200 (3/3)" in log, log
    assert any("is live" in line for line in log), log
    timings = release["timings"]
    for step in ("queued", "building", "booting", "health_checking", "switching", "draining"):
        assert step in timings and timings[step] >= 0, f"timings lack {step}: {timings}"
    total = event_at(release, "live") - release["events"][0]["at"]
    assert abs(sum(timings.values()) - total) < 0.05, (timings, total)
    assert release["config"]["healthcheck"]["healthy_threshold"] == 3, release["config"]
    assert release["source"] == "push" and release["image"].startswith(f"temps/{app}:")
    listed = temps_daemon.releases(app)[0]
    assert listed["number"] == 2 and "timings" in listed, listed


# --- the temps CLI --------------------------------------------------------------------------------


def test_cli_drives_releases_rollback_config_logs_and_deploy(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "r-cli"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    first = push_ok(temps_daemon, repo, app, "v1")
    second = push_ok(temps_daemon, repo, app, "v2")

    def temps(*args: str, ok: bool = True) -> str:
        done = subprocess.run(
            [str(TEMPS_BIN), *args],
            env=temps_daemon.cli_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert (done.returncode == 0) == ok, (
            f"temps {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        )
        return done.stdout + done.stderr

    out = temps("releases", app)
    assert re.search(rf"^v2\s+live\s+push\s+{second[:12]}", out, re.M), out
    assert re.search(rf"^v1\s+retired\s+push\s+{first[:12]}", out, re.M), out

    out = temps("config", "set", app, "GREETING=from-cli")
    assert "GREETING=from-cli" in out and re.search(r"^v3 live$", out, re.M), out
    assert env_of(container(app, 3))["GREETING"] == "from-cli"
    assert "GREETING=from-cli" in temps("config", "get", app)

    out = temps("rollback", app, "1")
    assert re.search(r"^v4 live$", out, re.M), out
    assert_serves(temps_daemon, app, "v1", 4)

    log = temps("releases", "output", app, "4")
    assert "health /health: HTTP 200 (3/3)" in log and "is live" in log, log
    newest = temps("releases", "output", app)
    assert newest == log, "`temps releases output APP` is not the newest release's log"

    out = temps("deploy", app, "--commit", second)
    assert re.search(r"^v5 live$", out, re.M), out
    assert_serves(temps_daemon, app, "v2", 5)

    out = temps("config", "unset", app, "GREETING")
    assert re.search(r"^v6 live$", out, re.M), out
    assert "GREETING" not in temps("config", "get", app)
    assert "GREETING" not in env_of(container(app, 6))

    out = temps("releases", app)
    sources = re.findall(r"^(v\d+)\s+(\w+)\s+(\w+)", out, re.M)
    assert sources[:6] == [
        ("v6", "live", "config"),
        ("v5", "retired", "redeploy"),
        ("v4", "retired", "rollback"),
        ("v3", "retired", "config"),
        ("v2", "retired", "push"),
        ("v1", "retired", "push"),
    ], out
    out = temps("rollback", app, "99", ok=False)
    assert "404" in out, out
