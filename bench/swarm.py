"""swarm: what running on Docker Swarm costs against the single engine (issue 20).

The same small busybox app, `web=1`, on two daemons of the same code: one on the host's
engine, one with `--runtime swarm` on a Swarm of three engines built on this machine (the
host engine as manager, two dockerd in network namespaces as workers, Debian's
docker-registry as the registry; tests/support/swarm/).
- push-to-live: the whole `git push`, with the boot-and-gate share; on Swarm the push to the
  registry and the service's scheduling are in it;
- switch latency, probed every 1 ms as in switch_latency;
- a rollback inside the bake window (a route flip to the standby's containers or services),
  from the rollback's request to the first answer of the old release, as in rollback;
- on Swarm only, last: a worker node lost under load (its link cut, every process of it
  killed), from the kill until the app's three tasks are placed off it, gated and routed, and
  the requests that met the lost node meanwhile.

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
    ms,
    parse_args,
    running_daemon,
    secs,
    spread,
    summary,
)
from formation import live_app, push_to_live
from rollback import Cycle
from switch_latency import measure

from tests.support.checks import push_ok
from tests.support.swarm import SwarmCluster, swarm_cluster
from tests.support.swarm.loss import lose_a_node_under_load

RUNTIMES = ("swarm", "engine")


def figures_of(daemon: TempsDaemon, runs: int, deploys: int, name: str) -> dict[str, Any]:
    repo = live_app(daemon, name, 1)
    pushes = []
    for run in range(runs):
        row = push_to_live(daemon, name, repo, f"{name}-p{run}")
        print(f"    {name}: push to live {secs(row['seconds'])}", flush=True)
        pushes.append(row)
    switches = measure(daemon, name, repo, deploys, f"{name}-s")
    undo = f"{name}-undo"
    daemon.create_app(undo)
    cycle = Cycle(daemon, undo, daemon.home.parent / "repos" / undo)
    cycle.deploy(bake=0)
    rollbacks = []
    for _run in range(runs):
        row = cycle.inside()
        print(f"    {name}: rollback inside the bake window {ms(row['latency'])}", flush=True)
        rollbacks.append(row)
    return {"pushes": pushes, "switches": switches, "rollbacks": rollbacks}


def node_loss(daemon: TempsDaemon, cluster: SwarmCluster, repo: Path) -> dict[str, Any]:
    """web=3 on the workers under load; one worker lost: how long until three tasks are
    placed elsewhere, gated and routed, and what the load met meanwhile."""
    app = "hardy"
    daemon.create_app(app)
    with daemon.client() as api:
        api.patch(f"/api/apps/{app}/formation", json={"web": 3}).raise_for_status()
    push_ok(daemon, repo, app, "v1", settings={"swarm": {"constraints": ["node.role==worker"]}})
    loss = lose_a_node_under_load(daemon, cluster, app)
    if loss.lost.address in {entry["address"] for entry in loss.after}:
        raise RuntimeError(f"the tasks of {app} were not placed off {loss.lost.name} in time")
    failed = loss.load.non_2xx + loss.load.errors
    return {"back_in": loss.back_in, "failed": failed, "total": loss.load.total}


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
            lost = node_loss(daemon, cluster, Path(scratch) / "hardy")
    with running_daemon("swarm-engine", args.profile) as daemon:
        found["engine"] = figures_of(daemon, args.runs, args.deploys, "engine")
    for runtime in RUNTIMES:
        rows = found[runtime]
        seconds = summary([row["seconds"] for row in rows["pushes"]])
        gate = summary([r["boot_and_gate"] for r in rows["pushes"] if r["boot_and_gate"]])
        latency = summary([row["latency"] for row in rows["switches"]])
        failures = sum(row["probe_failures"] for row in rows["switches"])
        rolled = summary([row["latency"] for row in rows["rollbacks"]])
        pushed, gated = spread(seconds, secs), spread(gate, secs)
        report.figure(f"push_{runtime}", seconds, f"{runtime}: push to live {pushed}")
        report.figure(f"boot_gate_{runtime}", gate, f"{runtime}: boot and gate {gated}")
        report.figure(f"switch_{runtime}", latency, f"{runtime}: switch latency {spread(latency)}")
        report.figure(
            f"rollback_inside_{runtime}",
            rolled,
            f"{runtime}: rollback in the bake window {spread(rolled)}",
        )
        report.figure(f"probe_failures_{runtime}", failures, f"{runtime}: {failures} probes failed")
    report.figure(
        "node_loss",
        lost,
        f"swarm: a worker lost under load, its tasks gated and routed elsewhere after "
        f"{secs(lost['back_in'])}; {lost['failed']} of {lost['total']} requests failed",
    )
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
