"""Fault injection, end to end: the daemon, Traefik and the Docker engine fail mid-deploy.

Each test runs a daemon of its own (they SIGKILL it, SIGTERM it, cut it off from Docker)
on the shared dockerd, with app names unique to the run, and keeps steady load on its app
through Traefik. What a client of the app sees must not change while temps itself is down,
restarting or confused; what temps records must come back consistent by itself.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git, git_push, make_app_repo, remote_main
from tests.support.checks import (
    assert_no_failures,
    recorded_urls,
    rejection,
    route_servers,
    start_load,
)
from tests.support.daemon import TempsDaemon, container_name, running_daemon
from tests.support.dockercli import container_names, docker
from tests.support.load import LoadSummary, SlowRequest, version_of
from tests.support.outage import pid_gone, traefik_outage
from tests.support.sockproxy import UnixSocketProxy
from tests.support.wait import poll

pytestmark = pytest.mark.docker

# Container and image names are global on the shared dockerd: make this run's apps unique.
RUN = secrets.token_hex(2)
KILL_POINT_TIMEOUT = 120.0
PUSH_AFTER_KILL_TIMEOUT = 30.0
SETTLE_TIMEOUT = 20.0
DOWN_SECONDS = 1.5  # how long each test leaves the daemon dead before restarting it
DEPLOYING_RE = re.compile(r"deploying (?P<commit>[0-9a-f]{7,40}) to \S+ as v(?P<number>\d+)")
SLOW_BUILD = ("RUN sleep 8",)
SLOW_HEALTH_CGI = """
sleep 1
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo ok
"""
ENGINE_DOWN = "the Docker engine does not answer; nothing was deployed"
LIVE_RESTART_POLICY = "unless-stopped"


def routed_release(table: bytes, app: str) -> str | None:
    """The release Traefik's route table sends `app` to, by the release header its router
    adds (a middleware shared by the apps at that release)."""
    http = json.loads(table).get("http", {})
    for name in http.get("routers", {}).get(app, {}).get("middlewares", []):
        headers = http.get("middlewares", {}).get(name, {}).get("headers", {})
        release: str | None = headers.get("customResponseHeaders", {}).get("X-Temps-Release")
        if release is not None:
            return release
    return None


def app_name(label: str) -> str:
    return f"{label}-{RUN}"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def docker_proxy() -> Iterator[UnixSocketProxy]:
    """A cuttable path to dockerd; a test asking for it gets a daemon with DOCKER_HOST on it."""
    # A unix socket path must stay under 108 bytes: keep it out of pytest's deep tmp dirs.
    scratch = Path(tempfile.mkdtemp(prefix="temps-dock-"))
    proxy = UnixSocketProxy(scratch / "docker.sock")
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def temps_daemon(
    busybox_image: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TempsDaemon]:
    """A daemon of its own for every test here (it replaces the module-wide one)."""
    env = None
    if "docker_proxy" in request.fixturenames:
        proxy: UnixSocketProxy = request.getfixturevalue("docker_proxy")
        env = {"DOCKER_HOST": proxy.url}
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    home = tmp_path_factory.mktemp(f"home-{name}")
    with running_daemon(home, f"test-e2e-faults-{name}", env=env) as daemon:
        yield daemon


# --- helpers -------------------------------------------------------------------------------------


def deploy_first(daemon: TempsDaemon, tmp_path: Path, label: str) -> tuple[str, Path, str]:
    """Create an app and deploy v1 of it: (app, its repo, v1's commit)."""
    app = app_name(label)
    daemon.create_app(app)
    repo = tmp_path / app
    commit = make_app_repo(repo, "v1")
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, f"git push of v1 failed (exit {code}):\n{output}"
    assert_serves(daemon, app, "v1", 1)
    return app, repo, commit


def assert_serves(daemon: TempsDaemon, app: str, version: str, release: int) -> None:
    """Traefik serves `version`'s page from release `release`, which the records call live."""
    response = poll(
        lambda: daemon.get_app_page(app),
        lambda r: r.status_code == 200 and r.headers.get("x-temps-release") == f"v{release}",
        timeout=5,
        interval=0.1,
    )
    seen = (
        response.status_code,
        version_of(response.text),
        response.headers.get("x-temps-release"),
    )
    assert seen == (200, version, f"v{release}"), (
        f"GET / for {app}: HTTP, body version, X-Temps-Release = {seen}; "
        f"expected (200, {version!r}, 'v{release}')"
    )
    live = daemon.app(app)["live_release"]
    assert live is not None and live["number"] == release, f"live release of {app}: {live}"


def release_or_none(daemon: TempsDaemon, app: str, number: int) -> dict[str, Any] | None:
    """`GET /api/apps/<app>/releases/<n>` (with its log), or None while it does not exist."""
    try:
        return daemon.release(app, number)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return None
        raise


def wait_release(
    daemon: TempsDaemon,
    app: str,
    number: int,
    reached: Callable[[dict[str, Any]], bool],
    push: Future[tuple[int, str]],
    what: str,
    timeout: float = KILL_POINT_TIMEOUT,
    interval: float = 0.05,
) -> dict[str, Any]:
    """Poll release `number` until `reached(release)`; fail at once if the push ended first."""
    found = poll(
        lambda: release_or_none(daemon, app, number),
        lambda r: push.done() or (r is not None and reached(r)),
        timeout=timeout,
        interval=interval,
    )
    if found is None or not reached(found):
        detail = f"push ended:\n{push.result()[1]}" if push.done() else "timed out"
        state = found["state"] if found else "not created"
        raise AssertionError(f"never caught v{number} {what} (it is {state}; {detail})")
    return found


def wait_slow_build_step(daemon: TempsDaemon, app: str, push: Future[tuple[int, str]]) -> None:
    """Until v2 is inside its build for real: dockerd is running the slow step (SLOW_BUILD)."""
    wait_release(
        daemon,
        app,
        2,
        lambda r: r["state"] == "building" and any("sleep" in ln for ln in r["log"]),
        push,
        "running its slow build step",
    )


def push_in_background(
    pool: ThreadPoolExecutor, daemon: TempsDaemon, app: str, repo: Path
) -> Future[tuple[int, str]]:
    return pool.submit(git_push, repo, daemon.git_url(app))


def crash_and_restart(
    daemon: TempsDaemon,
    push: Future[tuple[int, str]],
    what: str,
    at_kill: Callable[[], None] = lambda: None,
) -> tuple[int, str]:
    """SIGKILL the daemon, leave it dead a moment, restart it; the push's answer.

    `at_kill` checks, the moment the daemon is dead, what the kill was aimed at."""
    killed = time.monotonic()
    daemon.kill()
    at_kill()
    code, output = push.result(timeout=PUSH_AFTER_KILL_TIMEOUT)
    assert code != 0, f"a push whose daemon was killed {what} exited 0:\n{output}"
    time.sleep(max(0.0, killed + DOWN_SECONDS - time.monotonic()))
    daemon.restart()
    return code, output


def live_numbers(releases: list[dict[str, Any]]) -> list[int]:
    return [r["number"] for r in releases if r["state"] == "live"]


def assert_consistent(daemon: TempsDaemon, app: str, version: str, live: int) -> dict[str, Any]:
    """One live release, served through Traefik at its own address; no container but its
    own."""
    releases = daemon.releases(app)
    assert live_numbers(releases) == [live], (
        f"live releases of {app}: {live_numbers(releases)}, expected [{live}]; "
        f"states {[(r['number'], r['state']) for r in releases]}"
    )
    record = next(r for r in releases if r["number"] == live)
    assert_serves(daemon, app, version, live)
    servers, recorded = route_servers(daemon, app), recorded_urls(daemon.release(app, live))
    assert servers == recorded, f"Traefik routes {app} to {servers}; v{live} is at {recorded}"
    own = [container_name(app, live)]
    names = poll(
        lambda: container_names(f"label=temps.app={app}"),
        lambda found: found == own,
        timeout=SETTLE_TIMEOUT,
        interval=0.25,
    )
    assert names == own, f"containers labelled temps.app={app}: {names}, expected {own}"
    assert_only_live_containers(daemon)
    health = daemon.healthz()
    assert health.status_code == 200, f"/healthz: {health.status_code} {health.text}"
    return record


def assert_only_live_containers(daemon: TempsDaemon) -> None:
    """Every container labelled with this daemon's home belongs to a live release."""
    lives = [daemon.app(app)["live_release"] for app in daemon.apps]
    owned = sorted(live["container"] for live in lives if live is not None)
    found = container_names(f"label=temps.home={daemon.home.resolve()}")
    assert found == owned, f"containers of this home: {found}; the live releases own {owned}"


def assert_interrupted(daemon: TempsDaemon, app: str, number: int, step: str) -> None:
    release = daemon.release(app, number)
    got = (release["state"], release["failed_step"])
    assert got == ("interrupted", step), (
        f"v{number} of {app}: state, failed_step = {got}; expected ('interrupted', {step!r}); "
        f"events {[(e['was'], e['state']) for e in release['events']]}"
    )
    assert release["failure_reason"], f"v{number} interrupted without a failure_reason"
    last = release["events"][-1]
    assert (last["was"], last["state"]) == (step, "interrupted"), release["events"]


def restart_policy(container: str) -> str:
    return docker("inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", container).strip()


def settled_problems(daemon: TempsDaemon, app: str, live: dict[str, Any]) -> list[str]:
    """What a deploy finishes with beyond the route, whether it ended or was reconciled.

    A deployed commit lands on main, and a live slot comes back by itself after a crash of
    the app or of the engine (its restart policy). Returns what does not hold.
    """
    problems = []
    main = remote_main(daemon.git_url(app))
    if main != live["commit"]:
        problems.append(
            f"main on the remote is {main}, but the live v{live['number']} runs {live['commit']}"
        )
    policy = restart_policy(live["container"])
    if policy != LIVE_RESTART_POLICY:
        problems.append(
            f"the live container {live['container']} has restart policy {policy!r}, "
            f"not {LIVE_RESTART_POLICY!r} like every live slot"
        )
    return problems


def assert_settled(daemon: TempsDaemon, app: str, live: dict[str, Any]) -> None:
    problems = settled_problems(daemon, app, live)
    assert not problems, "; ".join(problems)


def push_next(daemon: TempsDaemon, app: str, repo: Path, version: str, number: int) -> None:
    """After a fault, the next push deploys as usual: no lock or stale state was left behind."""
    make_app_repo(repo, version)
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, f"git push of {version} after the fault failed (exit {code}):\n{output}"
    assert_serves(daemon, app, version, number)


# --- 1. the daemon SIGKILLed mid-deploy ----------------------------------------------------------


@dataclass
class Deploying:
    """A push of v2 under way to an app live at v1, on a daemon about to be SIGKILLed."""

    daemon: TempsDaemon
    app: str
    push: Future[tuple[int, str]]
    route_file: Path
    slow: SlowRequest | None = None  # a request on v1 kept in flight across the kill
    route_at_kill: str | None = None  # the release the route file named when the kill came


@dataclass(frozen=True)
class KillPoint:
    """Where in a deploy the daemon is killed, and what it must have left once restarted."""

    what: str  # "during build": for the messages and the test id
    label: str  # of the app
    v2: dict[str, Any]  # make_app_repo options of the v2 the kill interrupts
    reach: Callable[[Deploying], None]  # waits, in the deploy, for the moment to kill
    check: Callable[[Deploying, LoadSummary], dict[str, Any]]  # returns the live release
    at_kill: Callable[[Deploying], None] = lambda run: None  # must hold as the kill lands

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.what.lower()).strip("-")


def v2_reaches(run: Deploying, state: str) -> None:
    wait_release(run.daemon, run.app, 2, lambda r: r["state"] == state, run.push, state)


def in_slow_build_step(run: Deploying) -> None:
    wait_slow_build_step(run.daemon, run.app, run.push)


def in_health_gate(run: Deploying) -> None:
    v2_reaches(run, "health_checking")
    time.sleep(1.0)  # a few probes have failed


def right_after_route_file_replaced(run: Deploying) -> None:
    run.route_at_kill = poll(
        lambda: routed_release(run.route_file.read_bytes(), run.app),
        lambda release: release != "v1" or run.push.done(),
        timeout=KILL_POINT_TIMEOUT,
        interval=0.002,
    )


def route_moved_to_v2(run: Deploying) -> None:
    assert run.route_at_kill == "v2", f"the route never moved to v2; push:\n{run.push.result()[1]}"


SLOW_GATE = {"healthcheck": {"interval": 0.6, "recheck_interval": 0.6}}


def in_drain(run: Deploying) -> None:
    # A 5 s request on v1, started before the switch, keeps the drain going.
    v2_reaches(run, "health_checking")
    run.slow = SlowRequest(run.daemon.http_url, f"{run.app}.{run.daemon.domain}").start()
    v2_reaches(run, "draining")
    time.sleep(0.5)


def interrupted_in(step: str) -> Callable[[Deploying, LoadSummary], dict[str, Any]]:
    """The check of a kill before the switch was confirmed: v2 interrupted, v1 still live."""

    def check(run: Deploying, summary: LoadSummary) -> dict[str, Any]:
        assert_interrupted(run.daemon, run.app, 2, step)
        return assert_consistent(run.daemon, run.app, "v1", 1)

    return check


def interrupted_in_switching(run: Deploying, summary: LoadSummary) -> dict[str, Any]:
    # The switch was published but not confirmed: the release is interrupted in `switching`
    # and the route goes back to v1, which never stopped.
    live = interrupted_in("switching")(run, summary)
    assert summary.versions in (["v1"], ["v1", "v2"]), summary.per_version
    return live


def live_after_drain(run: Deploying, summary: LoadSummary) -> dict[str, Any]:
    daemon, app = run.daemon, run.app
    assert run.slow is not None
    result = run.slow.result()
    # The switch was confirmed before `draining` was recorded: v2 is what Traefik serves.
    v2 = daemon.release(app, 2)
    last = v2["events"][-1]
    assert (last["was"], last["state"]) == ("draining", "live"), v2["events"]
    assert daemon.release(app, 1)["state"] == "retired"
    live = assert_consistent(daemon, app, "v2", 2)
    assert result.error is None and result.status == 200, (
        f"the request in flight on v1 failed: {result.status} {result.error}"
    )
    assert result.version == "v1", f"the slow request was answered by {result.body!r}"
    assert result.finished - result.started >= 4.5, "the slow request was cut short"
    return live


KILL_POINTS = [
    KillPoint(
        "during build",
        "kill-build",
        {"dockerfile_extra": SLOW_BUILD},
        in_slow_build_step,
        interrupted_in("building"),
    ),
    KillPoint(
        "during the health gate",
        "kill-gate",
        # /health is missing and failures do not count for two minutes: the gate keeps going.
        {"health": False, "settings": {"healthcheck": {"grace_period": 120.0, "deadline": 150.0}}},
        in_health_gate,
        interrupted_in("health_checking"),
    ),
    KillPoint(
        "right after the Traefik file is replaced",
        "kill-switch",
        # The confirming probe through Traefik takes a second (a slow health CGI), so a kill
        # the moment the file changes lands before the switch is confirmed.
        {
            "health_cgi": SLOW_HEALTH_CGI,
            "settings": {"healthcheck": {"path": "/cgi-bin/health", "timeout": 3.0}},
        },
        right_after_route_file_replaced,
        interrupted_in_switching,
        at_kill=route_moved_to_v2,
    ),
    # The gate takes 1.2 s, so the long request started in it reaches v1 before the switch.
    KillPoint("during drain", "kill-drain", {"settings": SLOW_GATE}, in_drain, live_after_drain),
]


@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda point: point.id)
def test_sigkill_mid_deploy(temps_daemon: TempsDaemon, tmp_path: Path, point: KillPoint) -> None:
    daemon = temps_daemon
    app, repo, _ = deploy_first(daemon, tmp_path, point.label)
    route_file = daemon.home / "traefik" / "dynamic" / "routes.yml"
    assert routed_release(route_file.read_bytes(), app) == "v1"
    load = start_load(daemon, app)
    try:
        make_app_repo(repo, "v2", **point.v2)
        with ThreadPoolExecutor(max_workers=1) as pool:
            run = Deploying(daemon, app, push_in_background(pool, daemon, app, repo), route_file)
            point.reach(run)
            crash_and_restart(daemon, run.push, point.what, lambda: point.at_kill(run))
        if run.slow is not None:
            run.slow.result()  # the request in flight ends before the load does
        time.sleep(1.0)
    finally:
        summary = load.stop()

    live = point.check(run, summary)
    assert_no_failures(summary)
    # Checked now, asserted after the next push: it must work even where these fail.
    problems = settled_problems(daemon, app, live)
    push_next(daemon, app, repo, "v3", 3)
    assert not problems, "; ".join(problems)


# --- 2. and 3. concurrent pushes -----------------------------------------------------------------


def test_five_concurrent_pushes_end_on_the_last_queued(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app, repo, _ = deploy_first(daemon, tmp_path, "five")
    versions = [f"v{n}" for n in range(2, 7)]
    version_of_commit: dict[str, str] = {}
    clones = []
    for version in versions:
        clone = tmp_path / f"clone-{version}"
        git(tmp_path, "clone", "-q", str(repo), str(clone))
        git(clone, "config", "user.name", "Temps Test")
        git(clone, "config", "user.email", "test@temps.invalid")
        version_of_commit[make_app_repo(clone, version)] = version
        clones.append(clone)

    start = threading.Barrier(len(clones))

    def push(clone: Path) -> tuple[int, str]:
        start.wait(30)
        return git_push(clone, daemon.git_url(app))

    load = start_load(daemon, app)
    try:
        time.sleep(0.5)
        with ThreadPoolExecutor(max_workers=len(clones)) as pool:
            answers = list(pool.map(push, clones, timeout=300))
        time.sleep(0.5)
    finally:
        summary = load.stop()

    releases = {r["number"]: r for r in daemon.releases(app)}
    assert sorted(releases) == list(range(1, 7)), f"releases of {app}: {sorted(releases)}"
    pushed: dict[int, tuple[int, str]] = {}
    for (code, output), clone in zip(answers, clones, strict=True):
        found = DEPLOYING_RE.search(output)
        assert found, f"push from {clone.name} never got a release (exit {code}):\n{output}"
        pushed[int(found.group("number"))] = (code, output)
    assert sorted(pushed) == list(range(2, 7)), f"pushes got releases {sorted(pushed)}"

    newest = releases[6]
    outcome = {n: (releases[n]["state"], pushed[n][0]) for n in range(2, 7)}
    assert newest["state"] == "live", f"the last queued release v6 is not live: {outcome}"
    for number in range(2, 6):
        state = releases[number]["state"]
        code, output = pushed[number]
        assert state in ("superseded", "retired"), f"v{number} ended {state}: {outcome}"
        if state == "superseded":
            reason = rejection(output) or ""
            assert code != 0 and "superseded by a newer push" in reason, (
                f"the push of superseded v{number} was not told so (exit {code}):\n{output}"
            )
            assert [e["state"] for e in releases[number]["events"]] == ["queued", "superseded"]
        else:
            assert code == 0, f"the push of v{number}, which went live, failed:\n{output}"
    assert pushed[6][0] == 0, f"the push of v6 failed:\n{pushed[6][1]}"
    went_live = [
        (n, e["at"]) for n in range(2, 7) for e in releases[n]["events"] if e["state"] == "live"
    ]
    assert went_live == sorted(went_live, key=lambda item: item[1]), (
        f"releases went live out of order: {went_live}"
    )

    live = assert_consistent(daemon, app, version_of_commit[newest["commit"]], 6)
    assert_settled(daemon, app, live)
    assert_no_failures(summary)


def test_two_apps_deploy_at_once(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    daemon = temps_daemon
    first, first_repo, _ = deploy_first(daemon, tmp_path, "pair-a")
    second, second_repo, _ = deploy_first(daemon, tmp_path, "pair-b")
    for repo in (first_repo, second_repo):
        make_app_repo(repo, "v2")

    loads = [start_load(daemon, first, rate=100.0), start_load(daemon, second, rate=100.0)]
    try:
        time.sleep(0.5)
        with ThreadPoolExecutor(max_workers=2) as pool:
            pushes = [
                pool.submit(git_push, repo, daemon.git_url(app))
                for app, repo in ((first, first_repo), (second, second_repo))
            ]
            answers = [push.result(timeout=300) for push in pushes]
        time.sleep(0.5)
    finally:
        summaries = [load.stop() for load in loads]

    for app, (code, output), summary in zip((first, second), answers, summaries, strict=True):
        assert code == 0, f"git push of v2 to {app} failed (exit {code}):\n{output}"
        assert_consistent(daemon, app, "v2", 2)
        assert daemon.release(app, 1)["state"] == "retired"
        assert_no_failures(summary)
    (a_start, a_end), (b_start, b_end) = (deploy_span(daemon, app) for app in (first, second))
    assert a_start < b_end and b_start < a_end, (
        f"the two deploys did not overlap: {first} {a_start:.2f}-{a_end:.2f}, "
        f"{second} {b_start:.2f}-{b_end:.2f}"
    )


def deploy_span(daemon: TempsDaemon, app: str) -> tuple[float, float]:
    """When v2 of the app was queued and when it went live (epoch seconds)."""
    events = daemon.release(app, 2)["events"]
    return float(events[0]["at"]), float(events[-1]["at"])


# --- 4. Traefik killed ---------------------------------------------------------------------------


def wait_traefik_restarted(daemon: TempsDaemon, old_pid: int) -> dict[str, Any]:
    body: dict[str, Any] = poll(
        lambda: daemon.healthz().json(),
        lambda b: b.get("traefik") is True and b.get("traefik_restarts", 0) >= 1,
        timeout=SETTLE_TIMEOUT,
        interval=0.1,
    )
    assert body.get("traefik") is True and body.get("traefik_restarts", 0) >= 1, (
        f"/healthz after Traefik was killed: {body}"
    )
    new_pid = daemon.traefik_pid()
    assert new_pid is not None and new_pid != old_pid and not pid_gone(new_pid), (
        f"traefik.pid {new_pid} after killing {old_pid}"
    )
    return body


def traefik_comes_back(daemon: TempsDaemon, app: str, pid: int) -> None:
    """SIGKILL Traefik `pid`: the daemon starts another, which serves the app as before."""
    traefik_outage(daemon, app)
    wait_traefik_restarted(daemon, pid)
    assert_consistent(daemon, app, "v1", 1)


def test_traefik_killed_is_restarted_and_routes_come_back(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app, repo, _ = deploy_first(daemon, tmp_path, "traefik-kill")

    # The Traefik this daemon started, then one it adopted after its own restart.
    pid = daemon.traefik_pid()
    assert pid is not None
    traefik_comes_back(daemon, app, pid)
    daemon.kill()
    daemon.restart()
    adopted = daemon.traefik_pid()
    assert adopted is not None and adopted != pid
    assert daemon.healthz().json().get("traefik_restarts") == 0, "the adopted Traefik restarted"
    traefik_comes_back(daemon, app, adopted)

    # Routes still change through the new Traefik.
    load = start_load(daemon, app)
    try:
        push_next(daemon, app, repo, "v2", 2)
    finally:
        summary = load.stop()
    assert_no_failures(summary)
    assert_consistent(daemon, app, "v2", 2)


# --- 5. the Docker engine unreachable ------------------------------------------------------------


def test_docker_unreachable_refuses_the_push_then_recovers(
    docker_proxy: UnixSocketProxy,
    temps_daemon: TempsDaemon,
    tmp_path: Path,
) -> None:
    daemon = temps_daemon
    app, repo, v1 = deploy_first(daemon, tmp_path, "no-docker")
    assert docker_proxy.connections > 0, "the daemon does not talk to Docker through the proxy"
    load = start_load(daemon, app)
    try:
        time.sleep(0.5)
        docker_proxy.stop()
        before = [(r["number"], r["state"]) for r in daemon.releases(app)]

        make_app_repo(repo, "v2")
        code, output = git_push(repo, daemon.git_url(app))
        reason = rejection(output)
        assert code != 0, f"a push was accepted with Docker unreachable:\n{output}"
        assert reason == ENGINE_DOWN, f"rejection reason {reason!r}:\n{output}"

        with daemon.client() as api:
            answer = api.post(f"/api/apps/{app}/deploy")
        assert answer.status_code == 503, f"deploy with Docker unreachable: {answer.status_code}"
        assert answer.headers["content-type"].startswith("application/problem+json"), (
            answer.headers["content-type"]
        )
        problem = answer.json()
        assert problem["status"] == 503 and "Docker engine" in problem["detail"], problem

        health = daemon.healthz()
        body = health.json()
        assert health.status_code == 503 and body["docker"] is False, (
            f"/healthz with Docker unreachable: {health.status_code} {body}"
        )
        assert body["database"] is True and body["traefik"] is True, body
        after = [(r["number"], r["state"]) for r in daemon.releases(app)]
        assert after == before, f"records changed while Docker was unreachable: {after}"
        assert remote_main(daemon.git_url(app)) == v1, "main moved on a refused push"

        docker_proxy.start()
        back = poll(lambda: daemon.healthz().status_code, lambda s: s == 200, timeout=15)
        assert back == 200, f"/healthz once Docker is back: {daemon.healthz().text}"
        code, output = git_push(repo, daemon.git_url(app))
        assert code == 0, f"the push once Docker is back failed (exit {code}):\n{output}"
        time.sleep(0.5)
    finally:
        summary = load.stop()
    assert_no_failures(summary)
    live = assert_consistent(daemon, app, "v2", 2)
    assert_settled(daemon, app, live)


def test_docker_lost_during_build_fails_the_push_clearly(
    docker_proxy: UnixSocketProxy,
    temps_daemon: TempsDaemon,
    tmp_path: Path,
) -> None:
    daemon = temps_daemon
    app, repo, v1 = deploy_first(daemon, tmp_path, "lost-docker")
    load = start_load(daemon, app)
    try:
        make_app_repo(repo, "v2", dockerfile_extra=SLOW_BUILD)
        with ThreadPoolExecutor(max_workers=1) as pool:
            push = push_in_background(pool, daemon, app, repo)
            wait_slow_build_step(daemon, app, push)
            docker_proxy.stop()
            code, output = push.result(timeout=120)
        reason = rejection(output)
        health = daemon.healthz()
        docker_proxy.start()
        time.sleep(0.5)
    finally:
        summary = load.stop()

    assert code != 0, f"the push went through though Docker went away mid-build:\n{output}"
    assert reason, f"no rejection reason:\n{output}"
    assert health.status_code == 503 and health.json()["docker"] is False, health.text
    v2 = daemon.release(app, 2)
    assert (v2["state"], v2["failed_step"]) == ("failed", "building"), (
        v2["state"],
        v2["failed_step"],
        v2["failure_reason"],
    )
    assert v2["failure_reason"] == reason, (v2["failure_reason"], reason)
    assert remote_main(daemon.git_url(app)) == v1, "main moved on a failed push"
    assert_no_failures(summary)
    assert_consistent(daemon, app, "v1", 1)
    push_next(daemon, app, repo, "v3", 3)
    # Last, so that everything above is known to hold: the pusher must learn the cause.
    assert "docker" in reason.lower(), (
        f"the pusher is not told that Docker went away; the rejection reads {reason!r}"
    )


# --- 6. SQLite under concurrent writers ----------------------------------------------------------


def test_concurrent_api_writers_and_a_push_never_see_database_locked(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app, repo, _ = deploy_first(daemon, tmp_path, "sqlite")
    writers, rounds = 6, 12
    answers: list[tuple[str, int, str]] = []
    answers_lock = threading.Lock()

    def write(index: int) -> None:
        with daemon.client() as api:
            for n in range(rounds):
                name = f"w{RUN}-{index}-{n}"
                calls: list[tuple[str, str, str, dict[str, Any] | None]] = [
                    ("POST /api/apps", "POST", "/api/apps", {"name": name}),
                    (
                        "PATCH /api/apps/<new>",
                        "PATCH",
                        f"/api/apps/{name}",
                        {"settings": {"healthcheck": {"interval": 0.5 + n}}},
                    ),
                    (
                        "PATCH /api/apps/<new>/config",
                        "PATCH",
                        f"/api/apps/{name}/config",
                        {"env": {"N": str(n)}},
                    ),
                    ("GET releases", "GET", f"/api/apps/{app}/releases", None),
                ]
                for label, method, path, body in calls:
                    response = api.request(method, path, json=body)
                    with answers_lock:
                        answers.append((label, response.status_code, response.text[:300]))
                    if response.status_code >= 300:
                        return

    load = start_load(daemon, app)
    try:
        make_app_repo(repo, "v2")
        with ThreadPoolExecutor(max_workers=writers + 1) as pool:
            push = push_in_background(pool, daemon, app, repo)
            wait_release(daemon, app, 2, lambda r: r["state"] != "queued", push, "started")
            for future in [pool.submit(write, index) for index in range(writers)]:
                future.result(timeout=300)
            code, output = push.result(timeout=300)
        time.sleep(0.5)
    finally:
        summary = load.stop()

    locked = [a for a in answers if "database is locked" in a[2]]
    assert not locked, f"'database is locked' in answers: {locked[:3]}"
    server_errors = [a for a in answers if a[1] >= 500]
    assert not server_errors, f"{len(server_errors)} 5xx answers, first: {server_errors[:3]}"
    wrong = [a for a in answers if a[1] != (201 if a[0] == "POST /api/apps" else 200)]
    assert not wrong, f"unexpected answers: {wrong[:3]}"
    assert len(answers) == writers * rounds * 4, f"only {len(answers)} calls were made"
    assert "database is locked" not in daemon.log_path.read_text(errors="replace"), (
        "the daemon log mentions 'database is locked'"
    )
    assert code == 0, f"the push during the writers failed (exit {code}):\n{output}"
    with daemon.client() as api:
        names = {a["name"] for a in api.get("/api/apps").json()}
    assert len({n for n in names if n.startswith(f"w{RUN}-")}) == writers * rounds
    assert_no_failures(summary)
    assert_consistent(daemon, app, "v2", 2)


# --- 7. graceful shutdown ------------------------------------------------------------------------


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def test_sigterm_while_idle_exits_fast_and_traefik_keeps_serving(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app, repo, _ = deploy_first(daemon, tmp_path, "sigterm")
    traefik = daemon.traefik_pid()
    assert traefik is not None
    load = start_load(daemon, app)
    try:
        time.sleep(0.5)
        code, took = daemon.terminate(timeout=15)
        assert took <= 5.0, f"the idle daemon took {took:.1f} s to exit on SIGTERM"
        # uvicorn re-raises the signal once its graceful shutdown is done.
        assert code in (0, -signal.SIGTERM), f"temps serve exited {code} on SIGTERM"
        assert '"daemon.stopped"' in daemon.log_tail(5), (
            f"the daemon did not go through its shutdown:\n{daemon.log_tail(20)}"
        )
        assert not pid_gone(traefik), "Traefik went down with the daemon"
        time.sleep(2.0)  # Traefik alone serves the app
        assert not answers(f"{daemon.api_url}/healthz"), "the daemon's port still answers"
        daemon.restart()
        time.sleep(0.5)
    finally:
        summary = load.stop()
    assert_no_failures(summary)

    assert daemon.traefik_pid() == traefik, "the restarted daemon did not adopt Traefik"
    assert daemon.healthz().json()["traefik_restarts"] == 0
    live = assert_consistent(daemon, app, "v1", 1)
    assert [(r["number"], r["state"]) for r in daemon.releases(app)] == [(1, "live")]
    assert_settled(daemon, app, live)
    push_next(daemon, app, repo, "v2", 2)
