"""End to end, issue 18 (process types): a Procfile's web and worker processes, the release
phase it declares, per-process resources, and workers replaced without losing a job.

The worker takes jobs from a queue on the app's volume that has no locking at all: it reads
`/data/next`, works 3 s, then writes the next number. Two workers running at once take the
same job, so the job log proves whether they ever overlapped. A worker asked to stop
(SIGTERM) finishes the job in hand first: the shell runs its trap once `sleep` is over.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.apprepo import git_push, make_app_repo
from tests.support.checks import push_ok, rejection
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.dockercli import docker

pytestmark = pytest.mark.docker

WORKER = """
stop=0
trap 'stop=1' TERM
me=$(hostname)
echo "start $me" >> /data/jobs
while [ "$stop" = 0 ]; do
  n=$(cat /data/next 2>/dev/null || echo 1)
  echo "took $n $me" >> /data/jobs
  sleep 3
  echo "done $n $me" >> /data/jobs
  echo $((n + 1)) > /data/next
done
echo "exit $me" >> /data/jobs
"""
JOBS_CGI = """
printf 'Content-Type: text/plain\\r\\n\\r\\n'
cat /data/jobs 2>/dev/null
"""
# The image's own command would crash: the Procfile's web command is the one that serves.
PROCFILE = """# web is served through Traefik, worker runs in the background
web: exec httpd -f -p "$PORT" -h /www
worker: sh /www/cgi-bin/worker
release: mkdir -p /data && echo release >> /data/jobs
"""
STOP_TIMEOUT = 10


def push_app(daemon: TempsDaemon, repo: Path, app: str, version: str, **deploy: object) -> None:
    push_ok(
        daemon,
        repo,
        app,
        version,
        crash=True,
        procfile=PROCFILE,
        scripts={"worker": WORKER, "jobs": JOBS_CGI},
        settings={
            "deploy": {"stop_timeout": STOP_TIMEOUT, **deploy},
            "resources.worker": {"memory_mb": 64},
        },
    )


def journal(daemon: TempsDaemon, app: str) -> list[list[str]]:
    response = daemon.get_app_page(app, "/cgi-bin/jobs")
    assert response.status_code == 200, response.text
    return [line.split() for line in response.text.splitlines() if line.strip()]


def formation(daemon: TempsDaemon, app: str, **counts: int) -> dict[str, Any]:
    with daemon.client() as api:
        if counts:
            answer = api.patch(f"/api/apps/{app}/formation", json=counts, timeout=120)
        else:
            answer = api.get(f"/api/apps/{app}/formation")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def workers_of(daemon: TempsDaemon, app: str) -> list[dict[str, Any]]:
    return [c for c in formation(daemon, app)["containers"] if c["process"] == "worker"]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:g}s")


def exited(daemon: TempsDaemon, app: str) -> list[list[str]] | None:
    """The job log once a worker has exited."""
    lines = journal(daemon, app)
    return lines if any(words[0] == "exit" for words in lines) else None


def jobs_by_worker(lines: list[list[str]]) -> dict[str, list[tuple[str, str]]]:
    """What each worker (its hostname) wrote, in order: (event, job)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for words in lines:
        if words[0] in ("took", "done"):
            found.setdefault(words[2], []).append((words[0], words[1]))
        elif words[0] in ("start", "exit"):
            found.setdefault(words[1], []).append((words[0], ""))
    return found


def assert_every_job_finished(lines: list[list[str]], retired: int) -> None:
    """Each worker that was stopped finished the job it held, then exited."""
    by_worker = jobs_by_worker(lines)
    exited = [w for w, events in by_worker.items() if events[-1][0] == "exit"]
    assert len(exited) >= retired, f"{len(exited)} workers exited, expected {retired}: {lines}"
    for worker in exited:
        events = [e for e in by_worker[worker] if e[0] in ("took", "done")]
        taken = [job for event, job in events if event == "took"]
        done = [job for event, job in events if event == "done"]
        assert taken == done, f"worker {worker} left a job unfinished: {events}"


def test_a_procfile_runs_web_and_worker_and_the_old_worker_finishes_its_job(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "jobs-overlap", tmp_path / "repo"
    daemon.create_app(app)
    with daemon.client() as api:
        assert api.post(f"/api/apps/{app}/storage", json={"name": "q", "path": "/data"}).is_success
    push_app(daemon, repo, app, "v1")
    assert daemon.get_app_page(app).text.strip() == "version v1"  # the Procfile's web serves
    (worker,) = workers_of(daemon, app)
    assert worker["state"] == "running" and worker["release"] == "v1"
    memory = docker("inspect", worker["container"], "--format", "{{.HostConfig.Memory}}")
    assert int(memory) == 64 * 1024 * 1024, "[resources.worker] was not applied"
    wait_for(lambda: any(w[0] == "done" for w in journal(daemon, app)), 20, "a first job")

    push_app(daemon, repo, app, "v2")
    (worker,) = workers_of(daemon, app)
    assert worker["release"] == "v2"
    lines = wait_for(lambda: exited(daemon, app), STOP_TIMEOUT + 5, "the v1 worker to exit")
    assert_every_job_finished(lines, retired=1)
    assert [w[0] for w in lines].count("release") == 2  # the Procfile's release: ran twice


def test_without_overlap_no_job_is_taken_twice(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    daemon, app, repo = temps_daemon, "jobs-single", tmp_path / "repo"
    daemon.create_app(app)
    with daemon.client() as api:
        assert api.post(f"/api/apps/{app}/storage", json={"name": "q", "path": "/data"}).is_success
    push_app(daemon, repo, app, "v1", worker_overlap=False)
    for number in (2, 3, 4):
        wait_for(lambda: any(w[0] == "took" for w in journal(daemon, app)[-2:]), 10, "a job")
        time.sleep(1.0)  # mid-job: the worker holds one when it is asked to stop
        push_app(daemon, repo, app, f"v{number}", worker_overlap=False)
    time.sleep(4)
    lines = journal(daemon, app)
    assert_every_job_finished(lines, retired=3)
    taken = [w[1] for w in lines if w[0] == "took"]
    assert len(taken) == len(set(taken)), f"a job was taken twice: {taken}"
    assert taken == [str(n) for n in range(1, len(taken) + 1)], taken
    starts = [i for i, w in enumerate(lines) if w[0] == "start"]
    exits = [i for i, w in enumerate(lines) if w[0] == "exit"]
    # Each new worker started only after the one before it had exited.
    assert all(exits[n] < starts[n + 1] for n in range(3)), lines


def test_workers_scale_without_a_release(temps_daemon: TempsDaemon, tmp_path: Path) -> None:
    daemon, app, repo = temps_daemon, "jobs-scale", tmp_path / "repo"
    daemon.create_app(app)
    with daemon.client() as api:
        assert api.post(f"/api/apps/{app}/storage", json={"name": "q", "path": "/data"}).is_success
    push_app(daemon, repo, app, "v1")
    formation(daemon, app, worker=3)
    assert [w["state"] for w in workers_of(daemon, app)] == ["running"] * 3
    assert formation(daemon, app)["formation"] == {"web": 1, "worker": 3}
    formation(daemon, app, worker=0)
    assert workers_of(daemon, app) == []
    with daemon.client() as api:
        unknown = api.patch(f"/api/apps/{app}/formation", json={"clock": 1})
        releases = api.get(f"/api/apps/{app}/releases").json()
    assert unknown.status_code == 400 and "unknown process type 'clock'" in unknown.text
    assert [r["number"] for r in releases] == [1], "scaling made a release"
    # The next release runs the formation as it now is; `temps ps` shows its containers.
    formation(daemon, app, worker=2)
    push_app(daemon, repo, app, "v2")
    shown = subprocess.run(
        [str(TEMPS_BIN), "ps", app],
        env=daemon.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [line.split() for line in shown.splitlines()[1:]]
    assert sorted(r[0] for r in rows) == ["web", "worker", "worker"], shown
    assert {r[2] for r in rows} == {"v2"} and all(r[3] == "up" for r in rows), shown
    assert json.loads(docker("inspect", rows[1][1], "--format", "{{json .Config.Cmd}}")) == [
        "/bin/sh",
        "-c",
        "sh /www/cgi-bin/worker",
    ]

    # Workers removed while the daemon was down start again when it starts.
    daemon.terminate()
    for row in rows:
        if row[0] == "worker":
            docker("rm", "-f", row[1])
    daemon.restart()
    back = workers_of(daemon, app)
    assert [(w["state"], w["release"]) for w in back] == [("running", "v2")] * 2, back


def test_the_release_phase_declared_twice_rejects_the_push(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app, repo = temps_daemon, "jobs-twice", tmp_path / "repo"
    daemon.create_app(app)
    make_app_repo(
        repo,
        "v1",
        procfile="web: exec httpd -f -p $PORT -h /www\nrelease: true\n",
        settings={"deploy": {"release_command": "echo migrate"}},
    )
    code, output = git_push(repo, daemon.git_url(app))
    assert code != 0
    reason = rejection(output) or ""
    assert "release phase is set twice" in output, output
    assert reason, output
    make_app_repo(repo, "v2", procfile="web exec httpd\n")
    code, output = git_push(repo, daemon.git_url(app))
    assert code != 0 and "Procfile line 1: expected '<process type>: <command>'" in output
    assert daemon.app(app)["live_release"] is None
    assert httpx.get(daemon.api_url + "/healthz").status_code == 200
