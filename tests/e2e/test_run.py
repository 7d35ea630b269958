"""`temps run`: a command in a one-off container of the live release, as a user types it. The
real `temps` binary and daemon, dockerd, Traefik and git; the engine is asked what ran and
what was left behind."""

from __future__ import annotations

import json
import random
import select
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.checks import assert_no_failures, push_ok, under_load
from tests.support.credentials import admin, make_token
from tests.support.daemon import TEMPS_BIN, TempsDaemon, container_name
from tests.support.dockercli import container_names, docker
from tests.support.wait import poll

pytestmark = pytest.mark.docker

ATTACH_SECONDS = 10.0
TEMPS_SERVE_ARGS = ["--max-runs-per-app", "2", "--run-attach-timeout", str(ATTACH_SECONDS)]
BLOB = 5 * 1024 * 1024
SETTLE = 30.0  # generous: the machine runs other work beside these tests


@dataclass(frozen=True)
class Live:
    app: str
    repo: Path
    blob: bytes  # /www/blob.bin in its image


@pytest.fixture(scope="module")
def live(temps_daemon: TempsDaemon, tmp_path_factory: pytest.TempPathFactory) -> Live:
    """An app live at v1 with a config variable, a volume at /data, a memory limit, and 5 MB
    of bytes that are not UTF-8 in its image."""
    app = "runs"
    temps_daemon.create_app(app)
    assert admin(temps_daemon, "POST", f"/api/apps/{app}/storage",
                 json={"name": "data", "path": "/data"}).status_code == 201  # fmt: skip
    changed = admin(
        temps_daemon, "PATCH", f"/api/apps/{app}/config", json={"env": {"GREETING": "hé"}}
    )
    assert changed.status_code == 200, changed.text
    repo = tmp_path_factory.mktemp("run-repo") / app
    repo.mkdir()
    blob = random.Random(7).randbytes(BLOB)
    (repo / "www").mkdir()
    (repo / "www" / "blob.bin").write_bytes(blob)
    push_ok(temps_daemon, repo, app, "v1", settings={"resources": {"memory_mb": 200}})
    return Live(app, repo, blob)


def temps(
    daemon: TempsDaemon, *args: str, stdin: bytes = b"", timeout: float = 180
) -> subprocess.CompletedProcess[bytes]:
    """The real `temps ARGS`, stdin a pipe holding `stdin`: (exit code, stdout, stderr) bytes."""
    return subprocess.run(
        [str(TEMPS_BIN), *args],
        env=daemon.cli_env(),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd="/",
    )


def started(daemon: TempsDaemon, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(TEMPS_BIN), *args],
        env=daemon.cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd="/",
    )


def run_containers(app: str) -> list[str]:
    return container_names(f"label=temps.app={app}", "label=temps.process=run")


def wait_running(app: str, count: int) -> list[str]:
    found = poll(
        lambda: container_names(
            f"label=temps.app={app}", "label=temps.process=run", include_stopped=False
        ),
        lambda names: len(names) == count,
        timeout=SETTLE,
    )
    assert len(found) == count, f"{app}: one-off containers running {found}, wanted {count}"
    return found


def assert_none_left(app: str) -> None:
    left = poll(lambda: run_containers(app), lambda names: not names, timeout=SETTLE)
    assert not left, f"one-off containers of {app} left behind: {left}"


def runs_of(daemon: TempsDaemon, app: str) -> list[dict[str, Any]]:
    listed = admin(daemon, "GET", f"/api/apps/{app}/runs")
    assert listed.status_code == 200, listed.text
    rows: list[dict[str, Any]] = listed.json()
    return rows


@pytest.fixture
def no_run_before(live: Live) -> None:
    """The app's one-off containers of earlier tests gone (one still being removed counts
    as running), so that a test that waits for its own to run does not see theirs."""
    assert_none_left(live.app)


@pytest.fixture
def stopped_on_exit(no_run_before: None) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(30)


# --- exit codes, output, input -------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 137])
def test_the_commands_exit_code_is_the_clis(
    temps_daemon: TempsDaemon, live: Live, code: int
) -> None:
    command = "kill -9 $$" if code == 137 else f"echo out; echo err >&2; exit {code}"
    done = temps(temps_daemon, "run", live.app, "--", "sh", "-c", command)
    assert done.returncode == code, done.stderr
    if code != 137:
        assert (done.stdout, done.stderr) == (b"out\n", b"err\n")
    newest = runs_of(temps_daemon, live.app)[0]
    assert newest["state"] == "exited" and newest["exit_code"] == code, newest
    assert newest["who"] == "admin" and newest["command"] == ["sh", "-c", command], newest
    assert newest["started_at"] <= newest["ended_at"], newest
    assert_none_left(live.app)


def test_five_megabytes_that_are_not_text_arrive_whole_and_in_order(
    temps_daemon: TempsDaemon, live: Live
) -> None:
    done = temps(temps_daemon, "run", live.app, "--", "cat", "/www/blob.bin")
    assert done.returncode == 0, done.stderr
    differs = (i for i, (a, b) in enumerate(zip(done.stdout, live.blob, strict=False)) if a != b)
    assert len(done.stdout) == BLOB and done.stdout == live.blob, (
        f"got {len(done.stdout):,} bytes, the first difference at {next(differs, None)}"
    )


def test_stdin_is_passed_byte_for_byte_and_ends(temps_daemon: TempsDaemon, live: Live) -> None:
    sent = bytes(range(256)) * 64
    done = temps(temps_daemon, "run", live.app, "--", "cat", stdin=sent)
    assert done.returncode == 0 and done.stdout == sent, done.stderr


def test_it_runs_with_the_live_containers_environment_volumes_and_limits(
    temps_daemon: TempsDaemon, live: Live, stopped_on_exit: list[subprocess.Popen[bytes]]
) -> None:
    done = temps(
        temps_daemon,
        "run",
        live.app,
        "--",
        "sh",
        "-c",
        "echo $GREETING $PORT > /data/seen; cat /data/seen",
    )
    assert done.returncode == 0 and done.stdout == "hé 8000\n".encode(), done
    web = container_name(live.app, 1)
    assert docker("exec", web, "cat", "/data/seen") == "hé 8000\n"

    stopped_on_exit.append(started(temps_daemon, "run", live.app, "--", "sleep", "300"))
    (one_off,) = wait_running(live.app, 1)
    run, served = (json.loads(docker("inspect", name))[0] for name in (one_off, web))
    for part, key in [("Config", "Env"), ("Config", "Image"), ("HostConfig", "Memory"),
                      ("HostConfig", "NanoCpus"), ("HostConfig", "PidsLimit"),
                      ("HostConfig", "CapDrop"), ("HostConfig", "Init")]:  # fmt: skip
        assert run[part][key] == served[part][key], (part, key, run[part][key], served[part][key])
    assert run["HostConfig"]["Memory"] == 200 * 1024 * 1024
    assert [m["Name"] for m in run["Mounts"]] == [m["Name"] for m in served["Mounts"]]
    assert list(run["NetworkSettings"]["Networks"]) == list(served["NetworkSettings"]["Networks"])
    assert run["Config"]["Labels"]["temps.process"] == "run"
    assert run["Config"]["Cmd"] == ["sleep", "300"]


# --- a terminal ----------------------------------------------------------------------------------


def test_an_interactive_shell_in_a_terminal(temps_daemon: TempsDaemon, live: Live) -> None:
    shell = pexpect.spawn(
        str(TEMPS_BIN),
        ["run", live.app, "--tty", "sh"],
        env=temps_daemon.cli_env(),
        timeout=60,
        dimensions=(30, 100),
    )
    try:
        shell.expect_exact("# ")  # busybox ash's prompt, as root
        shell.sendline("echo $((6 * 7))-$PORT; stty size")
        shell.expect(r"42-8000\r\n30 100\r\n")
        shell.setwinsize(40, 120)  # SIGWINCH to temps, which tells the daemon
        shell.sendline("sleep 1; stty size")
        shell.expect(r"40 120\r\n")
        shell.sendline("exit 3")
        shell.expect(pexpect.EOF)
    finally:
        shell.close()
    assert shell.exitstatus == 3, (shell.exitstatus, shell.signalstatus)
    assert runs_of(temps_daemon, live.app)[0]["tty"] is True
    assert_none_left(live.app)


# --- ending early --------------------------------------------------------------------------------


def test_a_client_that_disconnects_leaves_no_container(
    temps_daemon: TempsDaemon, live: Live, stopped_on_exit: list[subprocess.Popen[bytes]]
) -> None:
    client = started(temps_daemon, "run", live.app, "--", "sleep", "300")
    stopped_on_exit.append(client)
    wait_running(live.app, 1)
    client.kill()  # no goodbye: the socket just closes
    assert_none_left(live.app)
    newest = poll(
        lambda: runs_of(temps_daemon, live.app)[0],
        lambda run: run["state"] != "running",
        timeout=SETTLE,
    )
    assert newest["state"] == "disconnected" and newest["exit_code"] is None, newest


def test_ctrl_c_without_a_terminal_stops_the_run(
    temps_daemon: TempsDaemon, live: Live, stopped_on_exit: list[subprocess.Popen[bytes]]
) -> None:
    client = started(temps_daemon, "run", live.app, "--", "sleep", "300")
    stopped_on_exit.append(client)
    wait_running(live.app, 1)
    client.send_signal(signal.SIGINT)
    code = client.wait(SETTLE)
    assert code == 130, (code, client.stderr.read() if client.stderr else b"")
    assert_none_left(live.app)


def test_a_run_past_its_timeout_is_killed(temps_daemon: TempsDaemon, live: Live) -> None:
    done = temps(temps_daemon, "run", live.app, "--timeout", "2", "--", "sleep", "300")
    assert done.returncode == 124, done
    assert b"still running after 2 s" in done.stderr, done.stderr
    assert runs_of(temps_daemon, live.app)[0]["state"] == "timed_out"
    assert_none_left(live.app)


def test_a_run_no_client_attaches_to_is_given_up(temps_daemon: TempsDaemon, live: Live) -> None:
    asked = admin(temps_daemon, "POST", f"/api/apps/{live.app}/runs", json={"command": ["true"]})
    assert asked.status_code == 201, asked.text
    assert asked.json()["attach_within"] == ATTACH_SECONDS
    run = poll(
        lambda: next(r for r in runs_of(temps_daemon, live.app) if r["id"] == asked.json()["id"]),
        lambda row: row["state"] != "pending",
        timeout=ATTACH_SECONDS + SETTLE,
    )
    assert run["state"] == "expired" and run["started_at"] is None, run
    with pytest.raises(InvalidStatus) as refused:
        connect(attach_url(temps_daemon, asked.json()), additional_headers=bearer(temps_daemon))
    assert refused.value.response.status_code == 409


# --- the limit -----------------------------------------------------------------------------------


def test_past_the_limit_of_runs_the_answer_is_429_naming_them(
    temps_daemon: TempsDaemon, live: Live, stopped_on_exit: list[subprocess.Popen[bytes]]
) -> None:
    for seconds in ("301", "302"):
        stopped_on_exit.append(started(temps_daemon, "run", live.app, "--", "sleep", seconds))
    wait_running(live.app, 2)
    refused = admin(temps_daemon, "POST", f"/api/apps/{live.app}/runs", json={"command": ["true"]})
    assert refused.status_code == 429, refused.text
    detail = refused.json()["detail"]
    assert "`sleep 301` by admin, running for" in detail, detail
    assert "`sleep 302` by admin, running for" in detail, detail
    done = temps(temps_daemon, "run", live.app, "--", "true")
    assert done.returncode == 125 and b"429" in done.stderr and b"sleep 301" in done.stderr, done
    for client in stopped_on_exit:
        client.send_signal(signal.SIGINT)
        client.wait(SETTLE)
    assert_none_left(live.app)
    assert temps(temps_daemon, "run", live.app, "--", "true").returncode == 0


# --- the live release ----------------------------------------------------------------------------


def test_the_live_release_serves_on_through_runs(temps_daemon: TempsDaemon, live: Live) -> None:
    with under_load(temps_daemon, live.app) as load:
        assert temps(temps_daemon, "run", live.app, "--", "cat", "/www/blob.bin").returncode == 0
        burn = "dd if=/dev/zero bs=1M count=300 2>/dev/null | md5sum"
        assert temps(temps_daemon, "run", live.app, "--", "sh", "-c", burn).returncode == 0
        oom = "dd if=/dev/zero bs=1M count=400 | sort > /dev/null"  # past its 200 MB
        assert temps(temps_daemon, "run", live.app, "--", "sh", "-c", oom).returncode != 0
        for code in (0, 1):
            done = temps(temps_daemon, "run", live.app, "--", "sh", "-c", f"exit {code}")
            assert done.returncode == code
    assert_no_failures(load.summary())
    assert {o.version for o in load.outcomes() if o.status == 200} == {"v1"}
    assert_none_left(live.app)


# --- refused -------------------------------------------------------------------------------------


def attach_url(daemon: TempsDaemon, asked: dict[str, Any]) -> str:
    return daemon.api_url.replace("http", "ws", 1) + asked["attach_url"]


def bearer(daemon: TempsDaemon, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or daemon.admin_token}"}


@pytest.mark.parametrize(
    ("app", "body", "status", "words"),
    [
        ("nope", {"command": ["true"]}, 404, "no app named 'nope'"),
        ("runs", {"command": []}, 400, "empty command"),
        ("runs", {"command": [""]}, 400, "empty command"),
        ("runs", {"command": ["echo", "x" * 70_000]}, 413, "over the limit of 65,536"),
        ("runs", {"command": ["echo"] * 2000}, 413, "2,000 arguments"),
        ("runs", {"command": ["a\u0000b"]}, 400, "NUL"),
        ("runs", {"command": ["true"], "timeout": 0}, 422, "timeout"),
        ("runs", {"command": ["true"], "tty": True, "cols": 0}, 422, "cols"),
        ("runs", {"command": "true"}, 422, "command"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    temps_daemon: TempsDaemon, live: Live, app: str, body: dict[str, Any], status: int, words: str
) -> None:
    answer = admin(temps_daemon, "POST", f"/api/apps/{app}/runs", json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"], answer.json()


def test_an_app_with_no_live_release_says_so(temps_daemon: TempsDaemon) -> None:
    temps_daemon.create_app("runs-idle")
    done = temps(temps_daemon, "run", "runs-idle", "--", "true")
    assert done.returncode == 125, done
    assert b"409: app 'runs-idle' has no live release to run a command from" in done.stderr


def test_the_cli_words_bad_input_clearly(temps_daemon: TempsDaemon, live: Live) -> None:
    unknown = temps(temps_daemon, "run", "nope", "--", "true")
    assert (unknown.returncode, unknown.stderr) == (125, b"temps: 404: no app named 'nope'\n")
    empty = temps(temps_daemon, "run", live.app, "--")
    assert empty.returncode != 0 and b"name the command to run" in empty.stderr
    huge = temps(temps_daemon, "run", live.app, "--", "echo", "x" * 70_000)
    assert huge.returncode == 125 and b"413: the command is 70,006 bytes" in huge.stderr, huge


def test_attaching_takes_the_token_that_asked(temps_daemon: TempsDaemon, live: Live) -> None:
    temps_daemon.create_app("runs-other")
    _other_id, other_apps = make_token(temps_daemon, "runs-other", "runs-other")
    _own_id, own_app_ci = make_token(temps_daemon, "runs-ci", live.app)
    asked = admin(temps_daemon, "POST", f"/api/apps/{live.app}/runs", json={"command": ["true"]})
    assert asked.status_code == 201, asked.text
    url = attach_url(temps_daemon, asked.json())
    for token, status in ((None, 401), ("temps_wrong", 401), (other_apps, 403), (own_app_ci, 403)):
        headers = {} if token is None else bearer(temps_daemon, token)
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers)
        assert refused.value.response.status_code == status, refused.value.response.body
        problem = json.loads(refused.value.response.body)
        assert problem["status"] == status and problem["detail"], problem
    with connect(url, additional_headers=bearer(temps_daemon)) as socket:
        messages = list(socket)
    assert messages[-1][0] == 3 and json.loads(messages[-1][1:])["exit_code"] == 0, messages


def test_a_deploy_token_of_the_app_may_run_and_list_runs(
    temps_daemon: TempsDaemon, live: Live
) -> None:
    _id, token = make_token(temps_daemon, "runs-deployer", live.app)
    env = temps_daemon.cli_env() | {"TEMPS_TOKEN": token}
    done = subprocess.run(
        [str(TEMPS_BIN), "run", live.app, "--", "echo", "deployed"],
        env=env, capture_output=True, timeout=180, check=False, cwd="/",
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, b"deployed\n"), done.stderr
    listed = httpx.get(
        f"{temps_daemon.api_url}/api/apps/{live.app}/runs", headers=bearer(temps_daemon, token)
    )
    assert listed.status_code == 200 and listed.json()[0]["who"] == "runs-deployer"


def test_runs_lists_who_ran_what(temps_daemon: TempsDaemon, live: Live) -> None:
    assert temps(temps_daemon, "run", live.app, "--", "sh", "-c", "exit 4").returncode == 4
    listed = temps(temps_daemon, "runs", live.app)
    assert listed.returncode == 0, listed.stderr
    first = listed.stdout.decode().splitlines()[0].split()
    assert first[1:4] == ["v1", "admin", "exit"] and first[4:] == ["4", "sh", "-c", "exit", "4"]


def test_destroying_an_app_ends_its_runs(
    temps_daemon: TempsDaemon, tmp_path: Path, stopped_on_exit: list[subprocess.Popen[bytes]]
) -> None:
    app = "runs-doomed"
    temps_daemon.create_app(app)
    push_ok(temps_daemon, tmp_path / "repo", app, "v1")
    client = started(temps_daemon, "run", app, "--", "sleep", "300")
    stopped_on_exit.append(client)
    wait_running(app, 1)
    destroyed = admin(temps_daemon, "DELETE", f"/api/apps/{app}?confirm={app}", timeout=180)
    assert destroyed.status_code == 200, destroyed.text
    assert client.wait(SETTLE) == 143  # the destroy stops each container: SIGTERM
    assert not run_containers(app)
    refused = admin(temps_daemon, "GET", f"/api/apps/{app}/runs")
    assert refused.status_code == 404, refused.text


# --- last: the daemon dies under a run -----------------------------------------------------------


def test_a_run_the_daemon_died_under_is_removed_and_recorded_at_its_start(
    temps_daemon: TempsDaemon, live: Live, stopped_on_exit: list[subprocess.Popen[bytes]]
) -> None:
    client = started(temps_daemon, "run", live.app, "--", "sh", "-c", "echo ready; sleep 300")
    stopped_on_exit.append(client)
    (left,) = wait_running(live.app, 1)
    # Its first line relayed: the attach is open (the container starts before it is).
    assert client.stdout and select.select([client.stdout], [], [], SETTLE)[0], "no output"
    assert client.stdout.readline() == b"ready\n"
    temps_daemon.kill()
    assert client.wait(SETTLE) == 125
    assert b"connection to the daemon was lost" in (client.stderr.read() if client.stderr else b"")
    assert run_containers(live.app) == [left], "the container went before the daemon came back"
    temps_daemon.restart()
    assert_none_left(live.app)
    newest = runs_of(temps_daemon, live.app)[0]
    assert newest["state"] == "interrupted" and newest["container"] == left, newest
    assert temps(temps_daemon, "run", live.app, "--", "true").returncode == 0
