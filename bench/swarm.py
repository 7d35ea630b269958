"""swarm: what running on Docker Swarm costs against the single engine (issue 20).

The same small busybox app, `web=1`, on two daemons of the same code: one on the host's
engine, one with `--runtime swarm` on a Swarm of three engines built on this machine (the
host engine as manager, two dockerd in network namespaces as workers, Debian's
docker-registry as the registry; tests/support/swarm/).
- push-to-live: the whole `git push`, with the boot-and-gate share; on Swarm the push to the
  registry and the service's scheduling are in it;
- switch latency, probed every 1 ms as in switch_latency.

    .venv/bin/python bench/swarm.py [--runs 5] [--deploys 10]

The swarm daemon runs first and its cluster is torn down before the engine daemon starts, so
the engine's figures are not taken beside two more dockerd.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import (
    TempsDaemon,
    header,
    parse_args,
    running_daemon,
    secs,
    spread,
    summary,
)
from formation import live_app, push_to_live
from switch_latency import measure

from tests.support.swarm import swarm_cluster

RUNTIMES = ("swarm", "engine")


def figures_of(daemon: TempsDaemon, runs: int, deploys: int, name: str) -> dict[str, Any]:
    repo = live_app(daemon, name, 1)
    pushes = []
    for run in range(runs):
        row = push_to_live(daemon, name, repo, f"{name}-p{run}")
        print(f"    {name}: push to live {secs(row['seconds'])}", flush=True)
        pushes.append(row)
    return {"pushes": pushes, "switches": measure(daemon, name, repo, deploys, f"{name}-s")}


def main() -> None:
    args = parse_args(
        "push-to-live and switch latency on Swarm against the single engine",
        runs=5,
        deploys=(int, 10, "switches measured per runtime (default 10)"),
    )
    report = header("swarm", args)
    found: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="temps-bench-swarm-") as scratch,
        swarm_cluster(workers=2, tmp=Path(scratch)) as cluster,
    ):
        flags = ["--runtime", "swarm", "--registry", cluster.registry]
        with running_daemon("swarm", args.profile, extra_args=flags) as daemon:
            found["swarm"] = figures_of(daemon, args.runs, args.deploys, "swarm")
    with running_daemon("swarm-engine", args.profile) as daemon:
        found["engine"] = figures_of(daemon, args.runs, args.deploys, "engine")
    for runtime in RUNTIMES:
        rows = found[runtime]
        seconds = summary([row["seconds"] for row in rows["pushes"]])
        gate = summary([r["boot_and_gate"] for r in rows["pushes"] if r["boot_and_gate"]])
        latency = summary([row["latency"] for row in rows["switches"]])
        failures = sum(row["probe_failures"] for row in rows["switches"])
        pushed, gated = spread(seconds, secs), spread(gate, secs)
        report.figure(f"push_{runtime}", seconds, f"{runtime}: push to live {pushed}")
        report.figure(f"boot_gate_{runtime}", gate, f"{runtime}: boot and gate {gated}")
        report.figure(f"switch_{runtime}", latency, f"{runtime}: switch latency {spread(latency)}")
        report.figure(f"probe_failures_{runtime}", failures, f"{runtime}: {failures} probes failed")
    ratio = report.figures["push_swarm"]["median"] / report.figures["push_engine"]["median"]
    report.figure("push_ratio", ratio, f"push to live, swarm / engine: {ratio:.2f}x")
    report.verdict(
        "no probe failed across the switches on either runtime",
        all(report.figures[f"probe_failures_{r}"] == 0 for r in RUNTIMES),
        ", ".join(f"{r}: {report.figures[f'probe_failures_{r}']}" for r in RUNTIMES),
    )
    report.write()


if __name__ == "__main__":
    main()
