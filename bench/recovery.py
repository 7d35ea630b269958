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

import signal
import time
from collections import Counter
from typing import Any

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

from tests.support.outage import traefik_outage

OUTAGE_TIMEOUT = 30.0
READY_TIMEOUT = 30.0


def outage(daemon: TempsDaemon, app: str) -> tuple[float, dict[int, int]]:
    """Traefik SIGKILLed: seconds to the next 2xx, the other statuses answered before it; then
    until the daemon reports its new Traefik, so that the next kill aims at that one."""
    pid = daemon.traefik_pid()
    found = traefik_outage(daemon, app, OUTAGE_TIMEOUT)
    assert pid is not None
    wait_traefik_back(daemon, pid)
    return found


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
    child, child_others = outage(daemon, app)
    daemon.kill()
    after_kill = restarted(daemon)
    adopted, adopted_others = outage(daemon, app)
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
