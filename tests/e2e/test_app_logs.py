"""End to end: an app's runtime logs (`temps logs`, `GET /api/apps/<app>/logs`, the app page's
live tail) against the real daemon, dockerd, Traefik and git.

The apps print numbered lines: `v1 tick 1`, `v1 tick 2`... every 0.2 s, a `v1 start` line on
stderr first and a `v1 stopping` line when SIGTERM comes. So a tail that lost a line shows a
gap in the numbers, one that showed a line twice shows a number twice, and one that let go of
a container before it stopped lacks its `stopping` line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import container
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.dockercli import container_names, docker
from tests.support.logtail import LogTail, Seen, parse
from tests.support.wait import poll

pytestmark = pytest.mark.docker

DEADLINE = 60.0  # for anything the tests wait on; each is seconds of work when all is well
TEMPS_SERVE_ARGS = ["--max-log-tails", "4", "--max-log-tails-per-app", "2"]

# A web process: busybox httpd in the background, and the shell printing numbered lines.
WEB = """
echo "{version} start" >&2
httpd -p "$PORT" -h /www
trap 'echo "{version} stopping"; exit 0' TERM
i=0
while :; do i=$((i + 1)); echo "{version} tick $i"; sleep 0.2 & wait $!; done
"""
WORKER = """
trap 'echo "work stopping"; exit 0' TERM
i=0
while :; do i=$((i + 1)); echo "work $i"; sleep 0.3 & wait $!; done
"""
PROCFILE = "web: exec sh /www/cgi-bin/web\nworker: exec sh /www/cgi-bin/worker\n"
QUIET = 'exec httpd -f -p "$PORT" -h /www'  # prints nothing at all
IDLE_WORKER_SECONDS = 10  # anyio's WorkerThread.MAX_IDLE_TIME


def push(daemon: TempsDaemon, repo: Path, app: str, version: str, **options: object) -> None:
    make_app_repo(repo, version, **options)  # type: ignore[arg-type]
    code, output = git_push(repo, daemon.git_url(app))
    assert code == 0, f"git push of {version} to {app} failed (exit {code}):\n{output}"


def ticking(daemon: TempsDaemon, repo: Path, app: str, version: str, worker: bool = False) -> None:
    """Push `version` of the ticking app (with a worker, from a Procfile)."""
    scripts = {"web": WEB.format(version=version), "worker": WORKER}
    if worker:
        push(daemon, repo, app, version, procfile=PROCFILE, scripts=scripts)
    else:
        push(daemon, repo, app, version, cmd="exec sh /www/cgi-bin/web", scripts=scripts)


def numbers(lines: list[Seen], name: str, release: int, word: bytes = b"tick") -> list[int]:
    """The numbers instance `name` of `release` printed, in the order they arrived."""
    found = []
    for line in lines:
        words = line.text.split()
        if line.name == name and line.release == release and word in words[:-1]:
            found.append(int(words[-1]))
    return found


def assert_consecutive(found: list[int], first: int | None = None) -> None:
    assert found, "no numbered line arrived"
    start = found[0] if first is None else first
    assert found == list(range(start, start + len(found))), f"gaps or repeats: {found}"


def metric(daemon: TempsDaemon, name: str) -> float:
    text = httpx.get(f"{daemon.api_url}/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def threads_of(daemon: TempsDaemon) -> int:
    assert daemon.process is not None
    return len(os.listdir(f"/proc/{daemon.process.pid}/task"))


def settled_threads(daemon: TempsDaemon) -> int:
    """The daemon's threads once the API's idle worker threads are gone: anyio ends those
    idle for 10 s when it next hands out work, here a `/healthz`."""
    time.sleep(IDLE_WORKER_SECONDS + 1)
    assert daemon.healthz().status_code == 200
    time.sleep(0.5)
    return threads_of(daemon)


def temps(daemon: TempsDaemon, *args: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(
        [str(TEMPS_BIN), *args], env=daemon.cli_env(), capture_output=True, timeout=120
    )
    assert (done.returncode == 0) == ok, (
        f"temps {' '.join(args)}: exit {done.returncode}\n{done.stdout!r}\n{done.stderr!r}"
    )
    return done


def logs_now(daemon: TempsDaemon, app: str) -> httpx.Response:
    """The app's last lines, not followed."""
    with daemon.client() as api:
        return api.get(f"/api/apps/{app}/logs", params={"lines": "1"})


def assert_refused(daemon: TempsDaemon, app: str, reason: str) -> None:
    refused = logs_now(daemon, app)
    assert refused.status_code == 429 and reason in refused.json()["detail"], refused.text


# --- across a deploy, and a scale ----------------------------------------------------------------


def test_a_tail_goes_on_across_a_deploy_with_no_line_lost_or_twice(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "logs-deploy"
    temps_daemon.create_app(app)
    repo = tmp_path / app
    ticking(temps_daemon, repo, app, "v1")
    with LogTail(temps_daemon, app, lines="3") as tail:
        tail.wait_for(lambda seen: len(numbers(seen, "web.1", 1)) >= 10, DEADLINE)
        ticking(temps_daemon, repo, app, "v2")
        left = poll(
            lambda: container_names(f"name=^{container(app, 1)}$"),
            lambda n: not n,
            timeout=DEADLINE,
        )
        assert not left, f"v1's container is still there: {left}"
        seen = tail.wait_for(lambda seen: len(numbers(seen, "web.1", 2)) >= 15, DEADLINE)

    assert {(line.name, line.release) for line in seen} == {("web.1", 1), ("web.1", 2)}, seen
    # v1: three lines first, then every line up to its last, the one it printed on SIGTERM.
    v1 = [line.text for line in seen if line.release == 1]
    assert_consecutive(numbers(seen, "web.1", 1))
    assert v1[-1] == b"v1 stopping", f"v1 was let go before it stopped: {v1[-5:]}"
    # v2: from its very first line on, stderr's too.
    assert b"v2 start" in [line.text for line in seen if line.release == 2]
    assert_consecutive(numbers(seen, "web.1", 2), first=1)
    keys = [(line.release, line.text) for line in seen]
    assert len(keys) == len(set(keys)), "a line arrived twice"


def test_scaling_adds_and_removes_instances_and_every_container_rotates_its_log(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "logs-scale"
    temps_daemon.create_app(app)
    ticking(temps_daemon, tmp_path / app, app, "v1", worker=True)
    with LogTail(temps_daemon, app, lines="0") as tail:
        tail.wait_for(lambda seen: {"web.1", "worker.1"} <= {s.name for s in seen}, DEADLINE)
        with temps_daemon.client() as api:
            scaled = api.patch(f"/api/apps/{app}/formation", json={"web": 3})
            assert scaled.status_code == 200, scaled.text
            names = [c["container"] for c in scaled.json()["containers"]]
            seen = tail.wait_for(
                lambda seen: all(len(numbers(seen, f"web.{n}", 1)) >= 5 for n in (1, 2, 3)),
                DEADLINE,
            )
            assert api.patch(f"/api/apps/{app}/formation", json={"web": 1}).status_code == 200
        seen = tail.wait_for(
            lambda seen: b"v1 stopping" in {s.text for s in seen if s.name == "web.3"}, DEADLINE
        )
        later = len(numbers(seen, "web.1", 1)) + 10
        seen = tail.wait_for(lambda seen: len(numbers(seen, "web.1", 1)) >= later, DEADLINE)

    assert {line.name for line in seen} == {"web.1", "web.2", "web.3", "worker.1"}, seen
    assert_consecutive(numbers(seen, "web.1", 1))
    assert_consecutive(numbers(seen, "worker.1", 1, b"work"))
    for added in ("web.2", "web.3"):
        texts = [line.text for line in seen if line.name == added]
        assert b"v1 start" in texts and texts[-1] == b"v1 stopping", (added, texts[:3], texts[-3:])
        assert_consecutive(numbers(seen, added, 1), first=1)
    for name in names:  # web.1..3 and the worker, while they ran
        assert name.startswith(f"temps-{app}-v1")
    for name in (names[0], names[-1]):  # web.1 and the worker, running still
        config = json.loads(docker("inspect", "--format", "{{json .HostConfig.LogConfig}}", name))
        assert config == {"Type": "local", "Config": {"max-file": "3", "max-size": "10m"}}, config


# --- clients that go -----------------------------------------------------------------------------


def test_a_client_that_goes_leaves_no_stream_or_thread_behind(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """Even while the app prints nothing: the daemon listens for the client's leaving."""
    quiet, busy = "logs-quiet", "logs-busy"
    temps_daemon.create_app(quiet)
    temps_daemon.create_app(busy)
    push(temps_daemon, tmp_path / quiet, quiet, "v1", cmd=QUIET)
    ticking(temps_daemon, tmp_path / busy, busy, "v1")
    assert metric(temps_daemon, "temps_log_tails") == 0
    before = settled_threads(temps_daemon)

    tails = [
        LogTail(temps_daemon, quiet),
        LogTail(temps_daemon, quiet, lines="0"),
        LogTail(temps_daemon, busy, accept="text/event-stream"),
    ]
    for tail in tails:
        tail.__enter__()
    try:
        tails[2].wait_for(lambda _: any(b'"web.1"' in t for t in tails[2].texts()), DEADLINE)
        streams = poll(
            lambda: metric(temps_daemon, "temps_log_streams"), lambda n: n >= 3, timeout=DEADLINE
        )
        assert streams >= 3 and metric(temps_daemon, "temps_log_tails") == 3
        assert threads_of(temps_daemon) >= before + 6  # a watcher and a follower each

        # One more of the quiet app passes its limit of 2; of the busy one, the daemon's of 4.
        assert_refused(temps_daemon, quiet, f"app '{quiet}' has 2 log tails open")
        tails.append(LogTail(temps_daemon, busy).__enter__())
        poll(lambda: metric(temps_daemon, "temps_log_tails"), lambda n: n == 4, timeout=DEADLINE)
        assert_refused(temps_daemon, busy, "4 log tails are open in the daemon")
    finally:
        for tail in tails:
            tail.close()

    def open_now() -> tuple[float, float]:
        return metric(temps_daemon, "temps_log_tails"), metric(temps_daemon, "temps_log_streams")

    left = poll(open_now, lambda counts: counts == (0, 0), timeout=DEADLINE)
    assert left == (0, 0), f"tails and streams open after every client went: {left}"
    assert logs_now(temps_daemon, quiet).status_code == 200
    after = settled_threads(temps_daemon)
    assert after <= before, f"{after} threads after the clients went, {before} before"


# --- bad input -----------------------------------------------------------------------------------


def test_unknown_apps_and_processes_and_apps_with_nothing_live_are_refused_clearly(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    empty, app = "logs-empty", "logs-refused"
    temps_daemon.create_app(empty)
    temps_daemon.create_app(app)
    push(temps_daemon, tmp_path / app, app, "v1", cmd=QUIET)

    def refused(name: str, status: int, *words: str, **query: str | int) -> None:
        with temps_daemon.client() as api:
            answer = api.get(f"/api/apps/{name}/logs", params=query)
        assert answer.status_code == status, (query, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        detail = answer.json()["detail"]
        for word in words:
            assert word in str(detail), (query, detail)

    refused("no-such-app", 404, "no-such-app")
    refused(empty, 409, "no live release")
    refused(app, 400, "unknown process type 'worker'", "web", process="worker")
    refused(app, 400, "since", since="yesterday")
    refused(app, 422, lines=-1)
    refused(app, 422, lines=10_001)

    # A live app whose containers are all stopped on purpose: the tail says so, and waits.
    with temps_daemon.client() as api:
        assert api.post(f"/api/apps/{app}/stop").status_code == 200
        said = api.get(f"/api/apps/{app}/logs").content
    assert said.endswith(f" temps: no container of {app} runs now\n".encode()), said
    with LogTail(temps_daemon, app) as tail:
        notices = poll(tail.notices, bool, timeout=DEADLINE)
    assert notices == [f"no container of {app} runs now"], notices

    out = temps(temps_daemon, "logs", "no-such-app", ok=False)
    assert b"404" in out.stderr and b"no-such-app" in out.stderr, out.stderr
    out = temps(temps_daemon, "logs", app, "--process", "worker", ok=False)
    assert b"unknown process type" in out.stderr, out.stderr
    out = temps(temps_daemon, "logs", empty, ok=False)
    assert b"no live release" in out.stderr, out.stderr


def test_output_that_is_not_utf8_is_passed_through(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "logs-bytes"
    temps_daemon.create_app(app)
    printed = "printf 'bytes \\377\\376 end\\n'; printf 'half \\303('"
    push(temps_daemon, tmp_path / app, app, "v1", cmd=f"{printed}; echo; {QUIET}")

    with temps_daemon.client() as api:
        text = api.get(f"/api/apps/{app}/logs").content
        events = api.get(f"/api/apps/{app}/logs", headers={"Accept": "text/event-stream"})
    assert b" web.1 v1: bytes \xff\xfe end\n" in text, text
    assert b" web.1 v1: half \xc3(\n" in text, text
    assert events.headers["content-type"].startswith("text/event-stream"), events.headers
    data = [
        json.loads(line.removeprefix("data: "))
        for line in events.text.splitlines()
        if line.startswith("data: ")
    ]
    assert [d["text"] for d in data] == ["bytes \ufffd\ufffd end", "half \ufffd("], data
    assert {(d["name"], d["release"], d["process"], d["instance"]) for d in data} == {
        ("web.1", 1, "web", 1)
    }
    out = temps(temps_daemon, "logs", app)
    assert b"bytes \xff\xfe end" in out.stdout, out.stdout


# --- the command line ----------------------------------------------------------------------------


def test_temps_logs_tail_prints_the_last_lines_then_follows_until_interrupted(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "logs-cli"
    temps_daemon.create_app(app)
    ticking(temps_daemon, tmp_path / app, app, "v1")
    with temps_daemon.client() as api:
        poll(
            lambda: api.get(f"/api/apps/{app}/logs").content.count(b" tick "),
            lambda n: n >= 12,
            timeout=DEADLINE,
        )

    tail = subprocess.Popen(
        [str(TEMPS_BIN), "logs", app, "--tail", "-n", "5"],
        env=temps_daemon.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(
        target=lambda: lines.extend(iter(tail.stdout.readline, b"")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        poll(lambda: len(lines), lambda n: n >= 15, timeout=DEADLINE)
        time_of_interrupt = time.monotonic()
        tail.send_signal(signal.SIGINT)
        code = tail.wait(30)
    finally:
        if tail.poll() is None:
            tail.kill()
    reader.join(10)
    assert code == 130, (code, tail.stderr.read() if tail.stderr else b"")
    assert time.monotonic() - time_of_interrupt < 30
    seen = [parse(line.rstrip(b"\n")) for line in lines]
    assert all(seen), lines
    ticks = numbers([s for s in seen if s], "web.1", 1)
    assert len(ticks) >= 15 and ticks[0] > 1, ticks  # the last five first, not the first
    assert_consecutive(ticks)  # then on, with nothing lost or repeated in between
    assert poll(lambda: metric(temps_daemon, "temps_log_tails"), lambda n: n == 0, timeout=30) == 0

    last = temps(temps_daemon, "logs", app, "-n", "3").stdout.splitlines()
    assert len(last) == 3 and all(b" web.1 v1: v1 tick " in line for line in last), last

    # A release's deploy log has a verb of its own; the old form still prints it.
    output = temps(temps_daemon, "releases", "output", app).stdout
    assert b"is live" in output, output
    old = temps(temps_daemon, "logs", app, "1")
    assert old.stdout == output, old.stdout
    assert b"temps releases output" in old.stderr, old.stderr


# --- the dashboard -------------------------------------------------------------------------------


def browser_support() -> ModuleType:
    try:
        from tests.support import browser
    except ImportError as exc:
        pytest.fail(f"the dashboard check needs selenium (a test dependency): {exc}")
    return browser


def test_the_app_page_shows_a_live_tail(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    app = "logs-page"
    temps_daemon.create_app(app)
    ticking(temps_daemon, tmp_path / app, app, "v1")
    signed_out = httpx.get(f"{temps_daemon.api_url}/dashboard/apps/{app}/logs", timeout=10)
    assert signed_out.status_code == 401, signed_out.text

    browser = browser_support()
    base = temps_daemon.api_url
    with browser.chromium(tmp_path / "chromium-profile") as page:
        page.open(f"{base}/dashboard/login")
        page.find("#token").send_keys(temps_daemon.admin_token)
        page.find("form.stack button[type=submit]").click()
        page.wait_for_text("h1", "Apps")
        page.open(f"{base}/dashboard/apps/{app}")
        page.wait_for_text("#applog-status", "following live")
        shown = page.wait_for_text("#applog", "web.1 v1: v1 tick")
        first = numbers([s for s in map(parse, shown.encode().splitlines()) if s], "web.1", 1)
        later = page.wait_for_text("#applog", f"v1 tick {first[-1] + 5}")
        ticks = numbers([s for s in map(parse, later.encode().splitlines()) if s], "web.1", 1)
        assert_consecutive(ticks)
