"""End to end, issue 15: an app, a pusher or a host that misbehaves never takes the daemon
down, stalls a lane or reaches past its own app.

Each attack runs while steady load goes through Traefik to a live release of the same app:
the attack fails with a clear error (or is contained), the live release keeps serving with
no answer that is not 2xx, the records stay intact, and the next good push deploys.
"""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.checks import (
    assert_no_failures,
    assert_serves,
    push_ok,
    rejection,
    start_load,
    state_path,
)
from tests.support.daemon import TEMPS_BIN, TempsDaemon, free_port, home_id_of
from tests.support.disk import fill, small_disk
from tests.support.wait import poll

pytestmark = pytest.mark.docker

TEMPS_SERVE_ARGS = [
    "--auth-failures",
    "100000",
    "--max-push-bytes",
    str(8 * 1024 * 1024),
    "--build-memory-mb",
    "64",
    "--build-pids",
    "300",
    # A home on a small disk deploys (its records then fill up on purpose).
    "--min-free-mb",
    "1",
]
# 2,000 processes at once in one RUN step, then a check that they all ran: with the build
# fence at 300 the forks fail and so does the step. Bounded: unfenced, it only runs 2,000.
FORKING_STEP = (
    "RUN n=0; while [ $n -lt 2000 ]; do sleep 30 & n=$((n+1)); done; "
    "test $(ls /proc | grep -c '^[0-9]') -ge 2000"
)

# The status line at once, then a header every 0.3 s for ever: every read of the probe gets
# a byte well within its timeout; only a deadline over the whole answer ends it.
DRIBBLING_HEALTH = r"""printf 'Content-Type: text/plain\r\n'
while true; do printf 'X-Drip: 1\r\n'; sleep 0.3; done
"""
# 200, then a body that never ends, as fast as the app can write it.
ENDLESS_HEALTH = r"""printf 'Content-Type: text/plain\r\n\r\n'
while true; do echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done
"""
GATE = {"path": "/cgi-bin/health", "interval": 0.2, "timeout": 1.0, "deadline": 4}


@contextmanager
def live_under_load(daemon: TempsDaemon, tmp_path: Path, app: str) -> Iterator[Path]:
    """App `app` with v1 live and steady load on it for the block; asserts the load stayed
    clean and v1 is what serves afterwards (unless the block deployed something newer)."""
    daemon.create_app(app)
    repo = tmp_path / app
    push_ok(daemon, repo, app, "v1")
    load = start_load(daemon, app)
    try:
        time.sleep(0.3)
        yield repo
        time.sleep(0.3)
    finally:
        summary = load.stop()
    assert_no_failures(summary)


@contextmanager
def concurrent_push(daemon: TempsDaemon, repo: Path, app: str) -> Iterator[Future[tuple[int, str]]]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(git_push, repo, daemon.git_url(app))


def poll_state(daemon: TempsDaemon, app: str, number: int, state: str) -> None:
    def reached(releases: list[dict[str, Any]]) -> bool:
        return any(r["number"] == number and r["state"] == state for r in releases)

    found = poll(lambda: daemon.releases(app), reached, timeout=120, interval=0.05)
    assert reached(found), [(r["number"], r["state"]) for r in found]


def assert_refused(daemon: TempsDaemon, repo: Path, app: str, *words: str) -> str:
    """Push the repo's tip: it must be rejected naming `words`, with v1 still served."""
    code, output = git_push(repo, daemon.git_url(app), timeout=180)
    assert code != 0, output
    said = (rejection(output) or "") + "\n".join(
        line for line in output.splitlines() if "remote" in line
    )
    assert all(word in said for word in words), output[-2000:]
    assert_serves(daemon, app, "v1", 1)
    return output


def push_next_good(daemon: TempsDaemon, repo: Path, app: str, version: str, number: int) -> None:
    push_ok(daemon, repo, app, version)
    assert_serves(daemon, app, version, number)


# --- health endpoints that never finish ---------------------------------------------------------


def test_a_dribbling_health_answer_fails_the_gate_at_its_deadline(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app = "h-dribble"
    with live_under_load(daemon, tmp_path, app) as repo:
        # Failures alone would end the gate first: let only the deadline end it.
        patient = {**GATE, "unhealthy_threshold": 50}
        make_app_repo(repo, "v2", settings={"healthcheck": patient}, health_cgi=DRIBBLING_HEALTH)
        started = time.monotonic()
        code, output = git_push(repo, daemon.git_url(app), timeout=120)
        took = time.monotonic() - started
        assert code != 0, output
        reason = rejection(output) or ""
        assert "not healthy within 4s" in reason and "no answer within 1s" in reason, output
        v2 = daemon.release(app, 2)
        gate = [e["at"] for e in v2["events"] if e["state"] in ("health_checking", "failed")]
        # The gate's deadline is honoured within one probe timeout.
        assert gate[-1] - gate[0] <= 4 + 1.0 + 0.5, (gate, took)
        assert v2["state"] == "failed" and v2["failed_step"] == "health_checking", v2
        assert_serves(daemon, app, "v1", 1)
    push_next_good(daemon, repo, app, "v3", 3)


def test_a_health_answer_with_an_endless_body_is_judged_by_its_status(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app = "h-endless"
    with live_under_load(daemon, tmp_path, app) as repo:
        # 200 is healthy whatever follows it: the body is never read.
        push_ok(daemon, repo, app, "v2", settings={"healthcheck": GATE}, health_cgi=ENDLESS_HEALTH)
        assert_serves(daemon, app, "v2", 2)
        path = state_path(daemon.release(app, 2))
        assert path[-1] == "live" and "switching" in path, path
        assert daemon_rss_mb(daemon) < 250
    push_next_good(daemon, repo, app, "v3", 3)


def daemon_rss_mb(daemon: TempsDaemon) -> float:
    assert daemon.process is not None
    status = Path(f"/proc/{daemon.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


# --- git requests that lie about their size ------------------------------------------------------


def receive_pack(daemon: TempsDaemon, app: str, body: bytes, **headers: str) -> httpx.Response:
    auth = httpx.BasicAuth("temps", daemon.admin_token)
    return httpx.post(
        f"{daemon.api_url}/{app}.git/git-receive-pack",
        content=body,
        auth=auth,
        headers={"Content-Type": "application/x-git-receive-pack-request", **headers},
        timeout=30,
    )


def pkt_line_of_length(length: bytes) -> Callable[[], bytes]:
    """A pkt-line whose length field is `length`, with 4 MiB after it."""
    return lambda: length + b"x" * (4 * 1024 * 1024)


def gzip_bomb() -> bytes:
    """64 MiB of zeros in less than 256 KiB."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 256 * 1024
    return bomb


# (app, the body, headers, the status, what the answer says)
LYING_BODIES: list[tuple[str, Callable[[], bytes], dict[str, str], int, str]] = [
    *[
        (f"g-pkt-{length.decode()}", pkt_line_of_length(length), {}, 200, "malformed git request")
        for length in (b"0001", b"0002", b"0003", b"ffff", b"zzzz")
    ],
    ("g-gzip", gzip_bomb, {"Content-Encoding": "gzip"}, 413, "larger than the limit"),
]


@pytest.mark.parametrize(
    ("app", "body", "headers", "status", "said"), LYING_BODIES, ids=[r[0] for r in LYING_BODIES]
)
def test_a_receive_pack_body_that_lies_is_refused_clearly(
    temps_daemon: TempsDaemon,
    tmp_path: Path,
    app: str,
    body: Callable[[], bytes],
    headers: dict[str, str],
    status: int,
    said: str,
) -> None:
    """A malformed pkt-line, or a gzip body that inflates past the limit."""
    daemon = temps_daemon
    with live_under_load(daemon, tmp_path, app) as repo:
        answer = receive_pack(daemon, app, body(), **headers)
        assert answer.status_code == status, answer.text[:300]
        assert said in answer.text, answer.text[:300]
        assert [r["number"] for r in daemon.releases(app)] == [1]
    push_next_good(daemon, repo, app, "v2", 2)


def test_a_small_push_that_unpacks_huge_is_refused_before_it_is_unpacked(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    app = "g-bomb"
    with live_under_load(daemon, tmp_path, app) as repo:
        # 150 MB of zeros: a push of a few hundred KB, over the 100 MiB object limit.
        subprocess.run(["truncate", "-s", "150M", str(repo / "zeros.bin")], check=True)
        make_app_repo(repo, "v2")
        before = daemon_rss_mb(daemon)
        assert_refused(daemon, repo, app, "over the limit of 104857600 (--max-object-bytes)")
        assert [r["number"] for r in daemon.releases(app)] == [1]
        assert daemon_rss_mb(daemon) - before < 50, "the refused push was unpacked in memory"
        (repo / "zeros.bin").unlink()
        git(repo, "reset", "-q", "--hard", "HEAD~1")
    push_next_good(daemon, repo, app, "v2", 2)


# --- builds and apps are fenced ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "step"),
    [
        # The shell holds what the command substitution prints: 300 MB at once.
        ("b-hungry", "RUN x=$(head -c 300000000 /dev/zero | tr '\\0' a)"),
        ("b-forks", FORKING_STEP),
    ],
    ids=["over-its-memory", "forking-past-its-pids"],
)
def test_a_build_step_past_the_build_fence_is_stopped_and_rejects_the_push(
    temps_daemon: TempsDaemon, tmp_path: Path, app: str, step: str
) -> None:
    daemon = temps_daemon
    with live_under_load(daemon, tmp_path, app) as repo:
        make_app_repo(repo, "v2", dockerfile_extra=(step,))
        assert_refused(daemon, repo, app, "build failed")
    push_next_good(daemon, repo, app, "v3", 3)


def test_an_app_cannot_build_on_another_apps_image(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    daemon.create_app("f-owner")
    push_ok(daemon, tmp_path / "f-owner", "f-owner", "v1")
    stolen = daemon.releases("f-owner")[0]["image"]
    app = "f-thief"
    with live_under_load(daemon, tmp_path, app) as repo:
        for base in (stolen, docker_json("inspect", stolen)[0]["Id"]):
            make_app_repo(repo, "v2")
            dockerfile = (repo / "Dockerfile").read_text()
            (repo / "Dockerfile").write_text(
                dockerfile + f"COPY --from={base} /www/index.html /www/stolen.html\n"
            )
            git(repo, "commit", "-q", "-am", "steal")
            said = assert_refused(daemon, repo, app)
            assert "another app" in said or "image ID" in said, said[-2000:]
            git(repo, "reset", "-q", "--hard", "HEAD~2")
        assert [r["state"] for r in daemon.releases(app)] == ["failed", "failed", "live"]
    push_next_good(daemon, repo, app, "v4", 4)


def docker_json(*args: str) -> Any:
    return json.loads(
        subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    )


def test_an_app_reaches_another_only_through_traefik(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon = temps_daemon
    for app in ("n-left", "n-right"):
        daemon.create_app(app)
        push_ok(daemon, tmp_path / app, app, "v1")
    left = daemon.releases("n-left")[0]["container"]
    right_info = docker_json("inspect", daemon.releases("n-right")[0]["container"])[0]
    networks = right_info["NetworkSettings"]["Networks"]
    assert list(networks) == [f"temps-{daemon_instance_id(daemon)}"], networks
    address = next(iter(networks.values()))["IPAddress"]
    gateway = next(iter(networks.values()))["Gateway"]
    port = daemon.releases("n-right")[0]["host_port"]
    assert not any(right_info["NetworkSettings"]["Ports"].values()), "published on the host"

    def from_left(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", left, *command], capture_output=True, text=True, timeout=30
        )

    # The other app's container, directly: inter-container traffic is off on the bridge.
    direct = from_left("wget", "-q", "-T", "3", "-O", "-", f"http://{address}:{port}/")
    assert direct.returncode != 0 and "version v1" not in direct.stdout, direct
    # Its port on the host, through the bridge's gateway: nothing is published there.
    via_host = from_left("wget", "-q", "-T", "3", "-O", "-", f"http://{gateway}:{port}/")
    assert via_host.returncode != 0 and "version v1" not in via_host.stdout, via_host
    # The host, where Traefik runs, reaches it on the bridge all the same.
    assert httpx.get(f"http://{address}:{port}/", timeout=10).text.strip() == "version v1"
    # No raw sockets: the capability is not in the app's effective set (bit 13, NET_RAW).
    status = from_left("cat", "/proc/self/status").stdout
    effective = int(
        next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1], 16
    )
    assert not effective & (1 << 13), hex(effective)
    # Traefik is the way in, for an app as for anyone.
    assert daemon.get_app_page("n-right").text.strip() == "version v1"


def daemon_instance_id(daemon: TempsDaemon) -> str:
    return home_id_of(daemon.home)


# --- the managed Traefik and the home are the daemon's own ---------------------------------------


def serve(home: Path, *, http: int, traefik_api: int) -> subprocess.CompletedProcess[str]:
    """`temps serve` on `home`, which must give up on its own: (exit code, output)."""
    return subprocess.run(
        [
            str(TEMPS_BIN),
            "serve",
            "--home",
            str(home),
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--http",
            f"127.0.0.1:{http}",
            "--traefik-api",
            f"127.0.0.1:{traefik_api}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextmanager
def held_port() -> Iterator[int]:
    """A loopback port something else listens on, and answers 200 to anything."""
    server = subprocess.Popen(
        ["python3", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd="/",
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        yield int(line.split(" port ")[1].split()[0])
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("taken", ["--http", "--traefik-api"])
def test_serve_refuses_a_taken_address_and_names_it(tmp_path: Path, taken: str) -> None:
    with held_port() as port:
        for attempt in range(3):
            # The other, free port may be taken meanwhile by a test on another worker.
            others = free_port()
            ports = {"http": port, "traefik_api": others}
            if taken == "--traefik-api":
                ports = {"http": others, "traefik_api": port}
            started = time.monotonic()
            done = serve(tmp_path / f"home{attempt}", **ports)
            took = time.monotonic() - started
            if f":{others} is already in use" not in done.stdout + done.stderr:
                break
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    # Refused at once rather than left waiting for the port: a generous bound for a loaded
    # machine, where starting the interpreter alone can take seconds.
    assert took < 30, took
    assert f"{taken} 127.0.0.1:{port} is already in use" in output, output[-2000:]


def test_a_second_daemon_on_the_same_home_is_refused(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    done = serve(temps_daemon.home, http=free_port(), traefik_api=free_port())
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "another temps daemon" in output and str(temps_daemon.home) in output, output[-2000:]
    assert temps_daemon.healthz().status_code == 200


def test_healthz_tells_when_the_managed_traefik_is_not_the_one_answering(
    busybox_image: str, tmp_path: Path
) -> None:
    daemon = TempsDaemon(home=tmp_path / "home")
    daemon.start()
    try:
        assert daemon.healthz().json()["traefik"] is True
        pid = daemon.traefik_pid()
        assert pid is not None
        os.kill(pid, 19)  # SIGSTOP: alive, but answering nothing
        try:
            answer = daemon.healthz(timeout=15)
        finally:
            os.kill(pid, 18)  # SIGCONT
        assert answer.status_code == 503 and answer.json()["traefik"] is False, answer.text
    finally:
        daemon.stop()


def test_the_home_is_private(temps_daemon: TempsDaemon) -> None:
    home = temps_daemon.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("temps.db", "admin-token", "secret.key"):
        mode = stat.S_IMODE((home / name).stat().st_mode)  # each made at the daemon's start
        assert mode & 0o077 == 0, (name, oct(mode))


# --- a lane always recovers -----------------------------------------------------------------------


def test_a_deploy_whose_records_cannot_be_written_does_not_stall_the_lane(
    busybox_image: str, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", 256) as disk:
        daemon = TempsDaemon(home=disk / "home", extra_args=TEMPS_SERVE_ARGS)
        daemon.start()
        try:
            app = "l-diskfull"
            with live_under_load(daemon, tmp_path, app) as repo:
                make_app_repo(repo, "v2", dockerfile_extra=("RUN sleep 2",))
                with concurrent_push(daemon, repo, app) as pushed:
                    poll_state(daemon, app, 2, "building")
                    filler = fill(disk)  # every write of the deploy fails from here on
                    code, output = pushed.result(timeout=120)
                assert code != 0, output
                filler.unlink()
                assert_serves(daemon, app, "v1", 1)
                # The lane took the next deploy: it was not left marked busy.
                push_next_good(daemon, repo, app, "v3", 3)
        finally:
            daemon.stop()


# --- forwarded headers ----------------------------------------------------------------------------


def test_a_forwarded_for_header_does_not_reset_the_failure_count(
    busybox_image: str, tmp_path: Path
) -> None:
    daemon = TempsDaemon(home=tmp_path / "home", extra_args=["--auth-failures", "3"])
    daemon.start()
    try:
        daemon.create_app("spoof")
        api = f"{daemon.api_url}/api/apps/spoof"
        answers = [
            httpx.get(
                api,
                headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"203.0.113.{n}"},
                timeout=10,
            ).status_code
            for n in range(5)
        ]
        # Each claimed a new address; the daemon counted its real peer, loopback.
        assert answers == [401, 401, 401, 429, 429], answers
    finally:
        daemon.stop()


# --- two homes on one engine ----------------------------------------------------------------------


def test_two_homes_on_one_engine_deploy_the_same_app_without_touching_each_other(
    temps_daemon: TempsDaemon, busybox_image: str, tmp_path: Path
) -> None:
    other = TempsDaemon(home=tmp_path / "other-home", extra_args=TEMPS_SERVE_ARGS)
    other.start()
    try:
        app = "twin"
        keep_one = {"deploy": {"keep_releases": 1}}
        with live_under_load(temps_daemon, tmp_path, app) as repo:
            mine = temps_daemon.releases(app)[0]
            # The very commit this home runs, pushed to the other home: same app, same
            # commit, same image content.
            other.create_app(app)
            code, output = git_push(repo, other.git_url(app))
            assert code == 0, output
            theirs = other.releases(app)[0]
            assert theirs["container"] != mine["container"], (theirs, mine)
            assert theirs["image"] != mine["image"], (theirs, mine)
            # The other home moves on and prunes all but its newest image.
            make_app_repo(repo, "v2", settings=keep_one)
            code, output = git_push(repo, other.git_url(app))
            assert code == 0, output
            assert_serves(other, app, "v2", 2)
            gone = poll(
                lambda: (
                    subprocess.run(
                        ["docker", "image", "inspect", theirs["image"]], capture_output=True
                    ).returncode
                ),
                lambda code: code != 0,
                timeout=30,
            )
            assert gone != 0, f"the other home kept {theirs['image']}"
            # Nothing of this home's was touched: its image, its container, its app.
            subprocess.run(
                ["docker", "image", "inspect", mine["image"]], check=True, capture_output=True
            )
            state = docker_json("inspect", mine["container"])[0]["State"]
            assert state["Running"], state
            assert_serves(temps_daemon, app, "v1", 1)
    finally:
        other.stop()
    # The other home's daemon is gone with its containers; this one's still serves.
    assert_serves(temps_daemon, app, "v1", 1)


# --- disk ---------------------------------------------------------------------------------------


def test_traefiks_access_log_is_rotated_and_reopened(busybox_image: str, tmp_path: Path) -> None:
    daemon = TempsDaemon(home=tmp_path / "home", extra_args=["--max-traefik-log-bytes", "20000"])
    daemon.start()
    try:
        app = "d-logs"
        daemon.create_app(app)
        push_ok(daemon, tmp_path / app, app, "v1")
        access = daemon.home / "traefik" / "access.log"
        with httpx.Client(headers={"Host": f"{app}.localhost"}, timeout=10) as client:
            for _ in range(6):  # each round writes about 60 KB of access log
                for _ in range(100):
                    assert client.get(f"{daemon.http_url}/").status_code == 200
                time.sleep(1.5)  # the watcher looks once a second
        rotated = sorted(p.name for p in access.parent.glob("access.log.*"))
        assert rotated == ["access.log.1", "access.log.2", "access.log.3"], rotated
        sizes = [p.stat().st_size for p in access.parent.glob("access.log*")]
        assert max(sizes) < 20000 + 120_000, sizes
        # Traefik writes to the new file, not to the one moved away.
        before = access.stat().st_size
        assert httpx.get(daemon.http_url, headers={"Host": f"{app}.localhost"}).status_code == 200
        grown = poll(lambda: access.stat().st_size, lambda size: size > before, timeout=5)
        assert grown > before, (before, grown)
    finally:
        daemon.stop()


def test_the_daemons_own_log_file_is_rotated(tmp_path: Path) -> None:
    log_file = tmp_path / "home" / "logs" / "daemon.log"
    daemon = TempsDaemon(
        home=tmp_path / "home",
        extra_args=[
            *("--log-file", str(log_file), "--max-daemon-log-bytes", "20000"),
            *("--auth-failures", "100000"),
        ],
    )
    daemon.start()
    try:
        with httpx.Client(base_url=daemon.api_url, timeout=10) as client:
            for n in range(600):  # each refusal logs an `auth.failed` line of ~200 bytes
                answer = client.get("/api/apps", headers={"Authorization": f"Bearer bad-{n}"})
                assert answer.status_code == 401, answer.text
            assert client.get("/healthz").status_code == 200
        rotated = sorted(p.name for p in log_file.parent.glob("daemon.log.*"))
        assert rotated == ["daemon.log.1", "daemon.log.2", "daemon.log.3"], rotated
        sizes = {p.name: p.stat().st_size for p in log_file.parent.glob("daemon.log*")}
        assert max(sizes.values()) <= 20000, sizes
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode) for p in log_file.parent.glob("daemon.log*")
        }
        assert set(modes.values()) == {0o600}, f"the daemon's log is not private: {modes}"
        assert "bad-599" not in log_file.read_text(), "a token was written to the log"
        assert '"auth.failed"' in log_file.read_text(), "the newest lines are not in the file"
    finally:
        daemon.stop()
