"""switch_latency: from the gate's last passing probe to the first request served by the new
release, as seen by a probe loop that sends a request through Traefik every 1 ms.

The gate passes when the release moves health_checking -> switching (the daemon's event
timestamp). The figure is split in two with the route file's mtime: the daemon's part (state
change, render, validate, write, fsync, rename) and Traefik's part (file watch, reload).

    .venv/bin/python bench/switch_latency.py [--runs 3] [--deploys 10]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common import (
    ProbeLoop,
    TempsDaemon,
    commit_app,
    daemon_pid,
    event_at,
    header,
    ms,
    parse_args,
    push,
    rss_mb,
    running_daemon,
    spread,
    summary,
    switch_confirm_seconds,
)

MEDIAN_TARGET = 0.050
P95_TARGET = 0.150


def route_mtime(daemon: TempsDaemon, app: str) -> float:
    # Every app's route is in one table: its rename is what Traefik reacts to.
    return os.stat(daemon.home / "traefik" / "dynamic" / "routes.yml").st_mtime_ns / 1e9


def one_switch(daemon: TempsDaemon, app: str, repo: Path, version: str) -> dict[str, Any]:
    """Push `version` under the probe loop; when each part of the switch happened."""
    commit_app(repo, version)
    with ProbeLoop(daemon.http_port, f"{app}.{daemon.domain}") as loop:
        pushed = push(repo, daemon.git_url(app))
    if pushed.code != 0:
        raise RuntimeError(f"push of {version} failed:\n{pushed.output}")
    release = daemon.releases(app)[0]
    label = release["version"]
    gate = event_at(release, "switching", "health_checking")
    first = loop.first(release=label)
    if gate is None or first is None:
        raise RuntimeError(f"{label}: no gate event or no request served by it")
    written = route_mtime(daemon, app)
    return {
        "release": label,
        "latency": first.received - gate,
        "latency_sent": first.sent - gate,
        "daemon_part": written - gate,
        "traefik_part": first.received - written,
        "confirmed_in": switch_confirm_seconds(daemon, app).get(label),
        "push_seconds": pushed.seconds,
        "probes": len(loop.samples),
        "probe_interval": loop.mean_interval,
        "probe_failures": len(loop.failures()),
        "daemon_rss_mb": rss_mb(daemon_pid(daemon))["VmRSS"],
    }


def measure(
    daemon: TempsDaemon, app: str, repo: Path, deploys: int, tag: str
) -> list[dict[str, Any]]:
    """`deploys` pushes of an already-live app; prints one line per switch."""
    found = []
    for index in range(deploys):
        row = one_switch(daemon, app, repo, f"{tag}-{index + 2}")
        print(
            f"    {row['release']}: gate -> first new answer {ms(row['latency'])} "
            f"(daemon {ms(row['daemon_part'])}, Traefik {ms(row['traefik_part'])}; "
            f"{row['probes']} probes every {ms(row['probe_interval'])}, "
            f"{row['probe_failures']} failed)",
            flush=True,
        )
        found.append(row)
    return found


def main() -> None:
    args = parse_args(
        "switch latency through Traefik, probed every 1 ms",
        runs=3,
        deploys=(int, 10, "deploys measured per run (default 10)"),
    )
    report = header("switch_latency", args)
    every: list[dict[str, Any]] = []
    with running_daemon("switch_latency", args.profile) as daemon:
        for run in range(args.runs):
            app = f"switch{run + 1}"
            daemon.create_app(app)
            repo = daemon.home.parent / "repos" / app
            commit_app(repo, f"r{run}-1")
            first = push(repo, daemon.git_url(app))
            if first.code != 0:
                raise RuntimeError(f"first push failed:\n{first.output}")
            print(f"  run {run + 1}: {args.deploys} deploys of {app}", flush=True)
            rows = measure(daemon, app, repo, args.deploys, f"r{run}")
            latencies = summary([row["latency"] for row in rows])
            report.runs.append({"run": run + 1, "switches": rows, "latency": latencies})
            print(f"  run {run + 1}: {spread(latencies)}", flush=True)
            every.extend(rows)

    medians = [run["latency"]["median"] for run in report.runs]
    p95s = [run["latency"]["p95"] for run in report.runs]
    pooled = summary([row["latency"] for row in every])
    report.figure("latency", pooled, f"gate -> first new answer, all runs: {spread(pooled)}")
    report.figure("run_medians", summary(medians), f"per-run medians: {spread(summary(medians))}")
    report.figure("run_p95s", summary(p95s), f"per-run p95s: {spread(summary(p95s))}")
    for key, text in (
        ("daemon_part", "gate -> route file renamed in (daemon)"),
        ("traefik_part", "route file -> first new answer (Traefik)"),
        ("confirmed_in", "file write -> confirmed by API and probe (daemon log)"),
        ("latency_sent", "gate -> sending of the first request the new release answered"),
    ):
        values = [row[key] for row in every if row[key] is not None]
        report.figure(key, summary(values), f"{text}: {spread(summary(values))}")
    rss = [row["daemon_rss_mb"] for row in every]
    report.figure(
        "daemon_rss_mb",
        rss,
        f"daemon RSS after each of {len(rss)} deploys: {rss[0]:.1f} -> {rss[-1]:.1f} MiB",
    )
    failures = sum(row["probe_failures"] for row in every)
    probes = sum(row["probes"] for row in every)
    report.figure("probe_failures", failures, f"probe loop: {failures} failed of {probes}")
    interval = summary([row["probe_interval"] for row in every])
    report.figure("probe_interval", interval, f"achieved probe interval: {spread(interval)}")
    report.verdict(
        "median <= 50 ms",
        pooled["median"] <= MEDIAN_TARGET,
        f"median {ms(pooled['median'])} over {pooled['n']} deploys",
    )
    report.verdict(
        "p95 <= 150 ms",
        pooled["p95"] <= P95_TARGET,
        f"p95 {ms(pooled['p95'])} over {pooled['n']} deploys",
    )
    report.write()


if __name__ == "__main__":
    main()
