"""recovery: how fast a live app is served again after its Traefik or its daemon is killed.

One daemon, one small app live. Each run:
- Traefik SIGKILLed, the one the daemon started and then one it adopted after its own restart:
  from the kill to the first 2xx through the Traefik the daemon starts in its place, probed
  every 20 ms on a new connection, and what else was answered meanwhile (by status);
- the daemon SIGKILLed: from `temps serve` starting again to /healthz ready;
- the daemon SIGTERMed while idle: until it exits (Traefik keeps serving meanwhile), and its
  start again.

The end-to-end tests check that each of these recovers (tests/e2e/test_faults.py); this
measures how long it takes.

    .venv/bin/python bench/recovery.py [--runs 3]
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from common import (
    TempsDaemon,
    commit_app,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    secs,
    spread,
    summary,
)

OUTAGE_TIMEOUT = 30.0
READY_TIMEOUT = 30.0


def pid_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return status.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def traefik_outage(daemon: TempsDaemon, app: str) -> tuple[float, dict[int, int]]:
    """SIGKILL the daemon's Traefik: (seconds to the next 2xx through Traefik, the other
    statuses answered before it)."""
    pid = daemon.traefik_pid()
    if pid is None:
        raise RuntimeError("the daemon has no Traefik pid")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    while not pid_gone(pid):
        time.sleep(0.005)
    others: Counter[int] = Counter()
    headers = {"Host": f"{app}.{daemon.domain}", "Connection": "close"}
    while time.monotonic() - killed < OUTAGE_TIMEOUT:
        try:
            response = httpx.get(f"{daemon.http_url}/", headers=headers, timeout=1.0)
        except httpx.HTTPError:
            response = None
        if response is not None and response.is_success:
            seconds = time.monotonic() - killed
            wait_traefik_back(daemon, pid)
            return seconds, dict(others)
        if response is not None:
            others[response.status_code] += 1
        time.sleep(0.02)
    raise RuntimeError(f"no 2xx through Traefik within {OUTAGE_TIMEOUT:g} s of killing it")


def wait_traefik_back(daemon: TempsDaemon, old_pid: int) -> None:
    """Until the daemon says its new Traefik runs, so the next kill aims at that one."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        pid = daemon.traefik_pid()
        if pid is not None and pid != old_pid and daemon.healthz().json().get("traefik"):
            return
        time.sleep(0.1)
    raise RuntimeError("the daemon did not report a new Traefik")


def restarted(daemon: TempsDaemon) -> float:
    """`temps serve` started again on the same home: seconds until /healthz answers."""
    started = time.monotonic()
    daemon.restart()
    return time.monotonic() - started


def one_run(daemon: TempsDaemon, app: str) -> dict[str, Any]:
    child, child_others = traefik_outage(daemon, app)
    daemon.kill()
    after_kill = restarted(daemon)
    adopted, adopted_others = traefik_outage(daemon, app)
    code, sigterm = daemon.terminate(timeout=15)
    if code not in (0, -signal.SIGTERM):
        raise RuntimeError(f"temps serve exited {code} on SIGTERM")
    after_sigterm = restarted(daemon)
    return {
        "traefik_child": child,
        "traefik_child_others": child_others,
        "traefik_adopted": adopted,
        "traefik_adopted_others": adopted_others,
        "ready_after_sigkill": after_kill,
        "sigterm_exit": sigterm,
        "ready_after_sigterm": after_sigterm,
    }


def main() -> None:
    args = parse_args("recovery from a killed Traefik or daemon", runs=3)
    report = header("recovery", args)
    with running_daemon("recovery", args.profile) as daemon:
        app = "phoenix"
        daemon.create_app(app)
        repo = daemon.home.parent / "repos" / app
        commit_app(repo, "v1")
        pushed = push(repo, daemon.git_url(app))
        if pushed.code != 0:
            raise RuntimeError(f"push of v1 failed:\n{pushed.output}")
        for run in range(args.runs):
            row = one_run(daemon, app)
            report.runs.append(row)
            print(
                f"    run {run + 1}: Traefik back after {ms(row['traefik_child'])} "
                f"(adopted: {ms(row['traefik_adopted'])}); daemon ready "
                f"{secs(row['ready_after_sigkill'])} after a SIGKILL; SIGTERM exit in "
                f"{secs(row['sigterm_exit'])}, ready again in {secs(row['ready_after_sigterm'])}",
                flush=True,
            )
    lines = {
        "traefik_child": ("Traefik the daemon started, SIGKILLed: first 2xx again", ms),
        "traefik_adopted": ("Traefik the daemon adopted, SIGKILLed: first 2xx again", ms),
        "ready_after_sigkill": ("daemon SIGKILLed: start to /healthz ready", secs),
        "sigterm_exit": ("idle daemon SIGTERMed: until it exits", secs),
        "ready_after_sigterm": ("daemon SIGTERMed: start to /healthz ready", secs),
    }
    for key, (text, unit) in lines.items():
        stats = summary([row[key] for row in report.runs])
        report.figure(key, stats, f"{text}: {spread(stats, unit)}")
    others: Counter[int] = Counter()
    for row in report.runs:
        others.update(row["traefik_child_others"])
        others.update(row["traefik_adopted_others"])
    shown = dict(others) or "nothing"
    report.figure("traefik_outage_others", dict(others), f"answered before the 2xx: {shown}")
    report.write()


if __name__ == "__main__":
    main()
