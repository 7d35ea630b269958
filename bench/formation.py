"""formation: what several web containers per release cost (issue 18).

One daemon, the same small busybox app twice: `one` with `web=1`, `three` with `web=3`.
- push-to-live: the whole `git push` of a new commit, both apps' pushes interleaved, with the
  gate's share (booting and gating three containers one after the other is the difference);
- switch latency with 3 servers per app, probed every 1 ms as in switch_latency, against the
  same figure with one server, on the same daemon.

    .venv/bin/python bench/formation.py [--runs 5] [--deploys 10]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import (
    TempsDaemon,
    commit_app,
    event_at,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    secs,
    spread,
    summary,
)
from switch_latency import measure

PUSH_RATIO_TARGET = 1.5
APPS = {"one": 1, "three": 3}


def live_app(daemon: TempsDaemon, app: str, web: int) -> Path:
    daemon.create_app(app)
    with daemon.client() as api:
        api.patch(f"/api/apps/{app}/formation", json={"web": web}).raise_for_status()
    repo = daemon.home.parent / "repos" / app
    commit_app(repo, f"{app}-1")
    first = push(repo, daemon.git_url(app))
    if first.code != 0:
        raise RuntimeError(f"first push of {app} failed:\n{first.output}")
    return repo


def push_to_live(daemon: TempsDaemon, app: str, repo: Path, version: str) -> dict[str, Any]:
    commit_app(repo, version)
    pushed = push(repo, daemon.git_url(app))
    if pushed.code != 0:
        raise RuntimeError(f"push of {app} {version} failed:\n{pushed.output}")
    release = daemon.releases(app)[0]
    booting = event_at(release, "booting")
    gated = event_at(release, "switching", "health_checking")
    boot_and_gate = gated - booting if gated is not None and booting is not None else None
    return {"seconds": pushed.seconds, "boot_and_gate": boot_and_gate}


def main() -> None:
    args = parse_args(
        "push-to-live and switch latency with one web container and with three",
        runs=5,
        deploys=(int, 10, "switches measured per app (default 10)"),
    )
    report = header("formation", args)
    pushes: dict[str, list[dict[str, Any]]] = {app: [] for app in APPS}
    switches: dict[str, list[dict[str, Any]]] = {}
    with running_daemon("formation", args.profile) as daemon:
        repos = {app: live_app(daemon, app, web) for app, web in APPS.items()}
        for run in range(args.runs):
            for app in APPS if run % 2 == 0 else reversed(APPS):
                row = push_to_live(daemon, app, repos[app], f"{app}-p{run}")
                print(f"    {app}: push to live {secs(row['seconds'])}", flush=True)
                pushes[app].append(row)
        for app in APPS:
            switches[app] = measure(daemon, app, repos[app], args.deploys, f"{app}-s")
    for app, web in APPS.items():
        seconds = summary([row["seconds"] for row in pushes[app]])
        gate = summary([row["boot_and_gate"] for row in pushes[app] if row["boot_and_gate"]])
        report.figure(f"push_{app}", seconds, f"web={web}: push to live {spread(seconds, secs)}")
        report.figure(f"boot_gate_{app}", gate, f"web={web}: boot and gate {spread(gate, secs)}")
        latency = summary([row["latency"] for row in switches[app]])
        report.figure(f"switch_{app}", latency, f"web={web}: switch latency {spread(latency)}")
        failures = sum(row["probe_failures"] for row in switches[app])
        report.figure(f"probe_failures_{app}", failures, f"web={web}: {failures} probes failed")
    ratio = report.figures["push_three"]["median"] / report.figures["push_one"]["median"]
    report.figure("push_ratio", ratio, f"push to live, web=3 / web=1: {ratio:.2f}x")
    report.verdict(
        f"web=3 push-to-live within {PUSH_RATIO_TARGET}x of web=1",
        ratio <= PUSH_RATIO_TARGET,
        f"{secs(report.figures['push_three']['median'])} / "
        f"{secs(report.figures['push_one']['median'])} = {ratio:.2f}x over {args.runs} pushes each",
    )
    three, one = report.figures["switch_three"], report.figures["switch_one"]
    report.verdict(
        "switch with 3 servers per app: median <= 50 ms",
        three["median"] <= 0.05,
        f"{ms(three['median'])} (1 server: {ms(one['median'])})",
    )
    report.write()


if __name__ == "__main__":
    main()
