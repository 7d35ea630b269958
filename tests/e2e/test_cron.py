"""End to end, scheduled jobs: `[[cron]]` entries run by the real daemon in one-off containers
of the live release (dockerd), across real pushes, a rollback (Traefik switching) and a
restart of the daemon.

What a user checks: a job every few seconds keeps its schedule across 5 deploys and a
rollback, one run per scheduled time, none twice, none lost; a run still going when a deploy
switches finishes on its release; a job past its timeout is stopped, recorded and notified; a
time due while the last run still runs is recorded skipped; a bad schedule refuses the push;
a daemon down across two scheduled times runs a job once at its start with `catch_up`, and
not at all without.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.apprepo import git_push, make_app_repo, render_toml
from tests.support.checks import push_ok, rejection
from tests.support.credentials import admin
from tests.support.daemon import TEMPS_BIN, TempsDaemon
from tests.support.sink import NotificationSink
from tests.support.wait import poll

pytestmark = pytest.mark.docker

# Schedules with seconds (six fields, the seconds first), for a test that sees many runs.
TEMPS_SERVE_ARGS = ["--cron-seconds"]
SETTLE = 120.0  # generous: the machine runs other work beside these tests
EVERY = 4  # seconds between two times of the job that must keep its schedule
FINAL = {"succeeded", "failed", "timed_out", "skipped", "interrupted"}


def cron_toml(*entries: Mapping[str, object]) -> str:
    """temps.toml with the tests' usual settings and these `[[cron]]` entries."""
    text = render_toml({}, 0)
    for entry in entries:
        text += "\n[[cron]]\n" + "".join(
            f"{key} = {_toml(value)}\n" for key, value in entry.items()
        )
    return text


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def deploy(
    daemon: TempsDaemon, repo: Path, app: str, version: str, *entries: Mapping[str, object]
) -> None:
    push_ok(daemon, repo, app, version, toml_text=cron_toml(*entries))


def runs(daemon: TempsDaemon, app: str, job: str) -> list[dict[str, Any]]:
    """The job's recorded runs, oldest scheduled time first."""
    answer = admin(daemon, "GET", f"/api/apps/{app}/cron/runs", params={"job": job, "limit": 2000})
    assert answer.status_code == 200, answer.text
    return sorted(answer.json(), key=lambda run: (run["scheduled_at"], run["id"]))


def run_now(daemon: TempsDaemon, app: str, job: str) -> dict[str, Any]:
    answer = admin(daemon, "POST", f"/api/apps/{app}/cron/{job}/run")
    assert answer.status_code == 202, answer.text
    found: dict[str, Any] = answer.json()
    return found


def run_of(daemon: TempsDaemon, app: str, run_id: int) -> dict[str, Any]:
    (found,) = [run for run in runs_all(daemon, app) if run["id"] == run_id]
    return found


def runs_all(daemon: TempsDaemon, app: str) -> list[dict[str, Any]]:
    answer = admin(daemon, "GET", f"/api/apps/{app}/cron/runs", params={"limit": 2000})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def ended(daemon: TempsDaemon, app: str, run_id: int, timeout: float = SETTLE) -> dict[str, Any]:
    found = poll(
        lambda: run_of(daemon, app, run_id),
        lambda run: run["state"] in FINAL,
        timeout=timeout,
        interval=0.5,
    )
    assert found["state"] in FINAL, f"run {run_id} still {found['state']}: {found}"
    return found


def containers_of(app: str, process: str = "cron") -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=temps.app={app}",
         "--filter", f"label=temps.process={process}"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return listed.stdout.split()


def test_a_job_keeps_its_schedule_across_five_deploys_and_a_rollback(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "cronkeep"
    daemon.create_app(app)
    tick = {"name": "tick", "schedule": f"*/{EVERY} * * * * *", "command": "echo tick $PORT"}
    repo = tmp_path / app
    deploy(daemon, repo, app, "v1", tick)
    began = time.time()
    for number in range(2, 6):
        time.sleep(EVERY)  # a time or so between two deploys
        deploy(daemon, repo, app, f"v{number}", tick)
    time.sleep(EVERY)
    rolled = admin(daemon, "POST", f"/api/apps/{app}/rollback?wait=true", json={"release": 4})
    assert rolled.status_code in (200, 201), rolled.text
    assert rolled.json()["state"] == "live", rolled.text
    time.sleep(3 * EVERY)
    stopped = time.time()
    poll(lambda: runs(daemon, app, "tick"), lambda found: all(r["state"] in FINAL for r in found),
         timeout=SETTLE, interval=0.5)  # fmt: skip

    found = [run for run in runs(daemon, app, "tick") if run["source"] == "schedule"]
    times = [run["scheduled_at"] for run in found]
    assert len(times) == len(set(times)), f"a scheduled time ran twice: {times}"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps and all(gap == EVERY for gap in gaps), f"a scheduled time was lost: {gaps}"
    assert times[0] <= began + EVERY and times[-1] >= stopped - 2 * EVERY, (began, stopped, times)
    assert all(run["state"] in ("succeeded", "skipped") for run in found), found
    ran = [run for run in found if run["state"] == "succeeded"]
    assert all(run["exit_code"] == 0 and run["output"] == "tick 8000" for run in ran), ran
    assert len({run["release"] for run in ran}) >= 4, "the runs did not follow the deploys"
    assert ran[-1]["release"] == 6, "after the rollback the runs use the rollback's release"

    def cron_list() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TEMPS_BIN), "cron", app], env=daemon.cli_env(), capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip

    # The job still runs every few seconds: its last run may be the one going right now.
    listed = poll(cron_list, lambda done: "succeeded (exit 0)" in done.stdout, timeout=SETTLE)
    assert listed.returncode == 0, listed.stderr
    assert "tick" in listed.stdout and "succeeded (exit 0)" in listed.stdout, listed.stdout


def test_a_run_going_when_a_deploy_switches_finishes_on_its_release(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "cronlong"
    daemon.create_app(app)
    slow = {"name": "slow", "schedule": "0 0 1 1 *", "command": "sleep 20; echo done"}
    repo = tmp_path / app
    deploy(daemon, repo, app, "v1", slow)
    started = run_now(daemon, app, "slow")
    assert (started["state"], started["release"], started["source"]) == ("running", 1, "manual")
    deploy(daemon, repo, app, "v2", slow)
    assert run_of(daemon, app, started["id"])["state"] == "running", "the deploy stopped it"
    finished = ended(daemon, app, started["id"])
    assert (finished["state"], finished["exit_code"], finished["release"]) == ("succeeded", 0, 1)
    assert finished["output"] == "done"
    assert poll(lambda: containers_of(app), lambda names: not names, timeout=SETTLE) == []
    asked = subprocess.run(
        [str(TEMPS_BIN), "cron", "run", app, "slow"], env=daemon.cli_env(), capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert asked.returncode == 0 and "slow: running on v2" in asked.stdout, asked
    again = ended(daemon, app, max(run["id"] for run in runs(daemon, app, "slow")))
    assert (again["release"], again["source"], again["state"]) == (2, "manual", "succeeded")


def test_a_job_past_its_timeout_is_stopped_and_reported_and_an_overlap_is_skipped(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "cronjobs"
    daemon.create_app(app)
    stuck = {"name": "stuck", "schedule": "0 0 1 1 *", "command": "echo begun; sleep 300",
             "timeout": 3}  # fmt: skip
    busy = {"name": "busy", "schedule": "*/3 * * * * *", "command": "sleep 7"}
    failing = {"name": "failing", "schedule": "0 0 1 1 *", "command": "echo no >&2; exit 3"}
    repo = tmp_path / app
    deploy(daemon, repo, app, "v1", stuck, busy, failing)
    with NotificationSink() as sink:
        answer = admin(daemon, "PUT", f"/api/apps/{app}/notifications", json={"url": sink.url})
        assert answer.is_success, answer.text
        timed = ended(daemon, app, run_now(daemon, app, "stuck")["id"])
        assert timed["state"] == "timed_out" and timed["exit_code"] is None, timed
        assert "after 3 s" in timed["detail"] and timed["output"] == "begun", timed
        assert timed["release"] == 1 and timed["source"] == "manual", timed
        assert timed["ended_at"] - timed["started_at"] < 120  # stopped, not left to sleep 300
        told = sink.wait_for(lambda r: r.json().get("event") == "cron_timed_out", SETTLE)
        assert told is not None and told.json()["job"] == "stuck"
        failed = ended(daemon, app, run_now(daemon, app, "failing")["id"])
        assert (failed["state"], failed["exit_code"], failed["output"]) == ("failed", 3, "no")
        told = sink.wait_for(lambda r: r.json().get("event") == "cron_failed", SETTLE)
        assert told is not None and told.json()["exit_code"] == 3
    found = poll(
        lambda: runs(daemon, app, "busy"),
        lambda found: (
            any(r["state"] == "skipped" for r in found)
            and any(r["state"] == "succeeded" for r in found)
        ),
        timeout=SETTLE,
        interval=0.5,
    )
    skipped = [run for run in found if run["state"] == "skipped"]
    assert skipped and all("still running" in run["detail"] for run in skipped), found
    assert all(run["started_at"] is None for run in skipped)
    assert not [n for n in containers_of(app) if "stuck" in n], "the timed-out container stayed"


def test_a_bad_schedule_refuses_the_push_naming_the_entry(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "cronbad"
    daemon.create_app(app)
    repo = tmp_path / app
    bad = {"name": "nightly", "schedule": "0 25 * * *", "command": "true"}
    make_app_repo(repo, "v1", toml_text=cron_toml(bad))
    code, output = git_push(repo, daemon.git_url(app))
    assert code != 0
    reason = rejection(output) or output
    assert "cron[0].schedule: entry 'nightly'" in reason, output


def test_a_daemon_down_across_two_times_catches_up_once_only_when_asked(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    """Last in the module: it stops and starts the module's daemon."""
    daemon, app = temps_daemon, "croncatch"
    daemon.create_app(app)
    every = 10
    caught = {"name": "caught", "schedule": f"*/{every} * * * * *", "command": "echo caught",
              "catch_up": True}  # fmt: skip
    left = {"name": "left", "schedule": f"*/{every} * * * * *", "command": "echo left"}
    sleeper = {"name": "sleeper", "schedule": "0 0 1 1 *", "command": "sleep 300"}
    deploy(daemon, tmp_path / app, app, "v1", caught, left, sleeper)
    for job in ("caught", "left"):  # each ran at least once: the daemon knows them
        poll(lambda job=job: runs(daemon, app, job), lambda found: bool(found) and
             found[-1]["state"] == "succeeded", timeout=SETTLE, interval=0.5)  # fmt: skip
    asleep = run_now(daemon, app, "sleeper")
    poll(lambda: containers_of(app), lambda names: any("sleeper" in n for n in names),
         timeout=SETTLE)  # fmt: skip
    daemon.terminate()
    down = time.time()
    assert not [n for n in containers_of(app) if "sleeper" in n], "a run outlived the daemon"
    time.sleep(2 * every + 3)  # two scheduled times at least pass
    daemon.restart()
    up = time.time()
    time.sleep(3)
    for job, source in (("caught", "catch_up"), ("left", None)):
        missed = [run for run in runs(daemon, app, job) if down < run["scheduled_at"] < up - 1]
        if source is None:
            assert missed == [], f"{job} ran a time it missed: {missed}"
            continue
        assert len(missed) == 1, f"{job} caught up {len(missed)} times: {missed}"
        (once,) = missed
        assert once["source"] == source and once["scheduled_at"] >= up - every - 1, once
        assert ended(daemon, app, once["id"])["state"] == "succeeded"
    stopped = run_of(daemon, app, asleep["id"])
    assert stopped["state"] == "interrupted" and stopped["ended_at"] < up, stopped
    schedule_after = poll(
        lambda: [r for r in runs(daemon, app, "left") if r["scheduled_at"] > up],
        bool,
        timeout=SETTLE,
        interval=0.5,
    )
    assert schedule_after, "the schedule did not go on after the restart"


def test_a_backup_schedule_makes_verified_backups_as_the_job_backup(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    daemon, app = temps_daemon, "cronsafe"
    daemon.create_app(app)
    mounted = admin(
        daemon, "POST", f"/api/apps/{app}/storage", json={"name": "data", "path": "/data"}
    )
    assert mounted.status_code == 201, mounted.text
    toml = render_toml({"backup": {"schedule": "*/5 * * * * *"}}, 0)
    push_ok(daemon, tmp_path / app, app, "v1", toml_text=toml)
    done = poll(
        lambda: runs(daemon, app, "backup"),
        lambda found: sum(run["state"] == "succeeded" for run in found) >= 2,
        timeout=SETTLE,
        interval=1.0,
    )
    assert sum(run["state"] == "succeeded" for run in done) >= 2, done
    times = [run["scheduled_at"] for run in done]
    assert len(times) == len(set(times)), f"a time ran twice: {times}"
    made = admin(daemon, "GET", f"/api/apps/{app}/backups")
    assert made.status_code == 200, made.text
    good = [b for b in made.json() if b["state"] == "good" and b["verification"] == "ok"]
    assert len(good) >= 2, made.json()

    # The name is temps' own: an entry of the app's may not take it.
    own = {"name": "backup", "schedule": "@daily", "command": "true"}
    make_app_repo(tmp_path / app, "v2", toml_text=cron_toml(own))
    code, output = git_push(tmp_path / app, daemon.git_url(app))
    assert code != 0 and "'backup' is temps' own job" in output, output
