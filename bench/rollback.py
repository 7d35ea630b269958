"""rollback: from `curl -X POST .../rollback` to the first request served by the old release,
seen by a probe loop through Traefik every 1 ms.

Inside the bake window the previous slot is still up, idle: the rollback is a route flip
with one health probe. After it (bake = 0: the previous slot was stopped at once) the old
image boots again and passes the full gate; its target is boot + gate + at most 0.5 s.

    .venv/bin/python bench/rollback.py [--runs 5]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import (
    ProbeLoop,
    TempsDaemon,
    commit_app,
    event_at,
    header,
    ms,
    parse_args,
    push,
    rollback_with_curl,
    running_daemon,
    spread,
    step_seconds,
    summary,
)

INSIDE_TARGET = 0.100
OUTSIDE_REST_TARGET = 0.5
BAKE = 60.0


class Cycle:
    def __init__(self, daemon: TempsDaemon, app: str, repo: Path) -> None:
        self.daemon, self.app, self.repo = daemon, app, repo
        self.pushed = 0
        self.live = ""

    def deploy(self, bake: float) -> None:
        self.pushed += 1
        version = f"v{self.pushed}"
        commit_app(self.repo, version, bake=bake)
        pushed = push(self.repo, self.daemon.git_url(self.app))
        if pushed.code != 0:
            raise RuntimeError(f"push of {version} failed:\n{pushed.output}")
        self.live = version

    def roll_back(self, old: str) -> dict[str, Any]:
        with ProbeLoop(self.daemon.http_port, f"{self.app}.{self.daemon.domain}") as loop:
            done = rollback_with_curl(self.daemon, self.app)
        if done.status != 200 or done.body.get("state") != "live":
            raise RuntimeError(f"rollback failed: HTTP {done.status} {done.body}")
        first = loop.first(body=f"version {old}")
        if first is None:
            raise RuntimeError(f"no request was served by {old} after the rollback")
        self.live = old
        release = self.daemon.releases(self.app)[0]
        steps = step_seconds(release)
        latency = first.received - done.started
        boot, gate = steps.get("booting", 0.0), steps.get("health_checking", 0.0)
        queued, switching = event_at(release, "queued"), event_at(release, "switching")
        assert queued is not None and switching is not None
        # Taking over a standby slot goes from queued straight to switching; a boot does not.
        taken_up = release["events"][1]["at"]
        return {
            "release": release["version"],
            "latency": latency,
            "curl_seconds": done.finished - done.started,
            "boot": boot,
            "gate": gate,
            "rest": latency - boot - gate,
            "to_queued": queued - done.started,  # curl, HTTP, checks, the release recorded
            "queued": taken_up - queued,  # the app's lane picks it up
            "switch": first.received - switching,  # route file written, Traefik reloads
            "probe_failures": len(loop.failures()),
            "probe_interval": loop.mean_interval,
        }

    def inside(self) -> dict[str, Any]:
        old = self.live
        self.deploy(bake=BAKE)  # the previous slot stays up, idle, on standby
        return self.roll_back(old)

    def outside(self) -> dict[str, Any]:
        old = self.live
        self.deploy(bake=0)  # the previous slot is drained and stopped at once
        return self.roll_back(old)


def main() -> None:
    args = parse_args("rollback to the first request served by the old release", runs=5)
    report = header("rollback", args)
    rows: dict[str, list[dict[str, Any]]] = {"inside": [], "outside": []}
    with running_daemon("rollback", args.profile) as daemon:
        app = "undo"
        daemon.create_app(app)
        cycle = Cycle(daemon, app, daemon.home.parent / "repos" / app)
        cycle.deploy(bake=0)
        for run in range(args.runs):
            for kind in ("inside", "outside"):
                row = getattr(cycle, kind)()
                rows[kind].append(row)
                print(
                    f"    run {run + 1} {kind:7s} {row['release']:>4s}: first old answer after "
                    f"{ms(row['latency'])} (curl returned after {ms(row['curl_seconds'])}; "
                    f"to queued {ms(row['to_queued'])}, queued {ms(row['queued'])}, "
                    f"boot {ms(row['boot'])}, gate {ms(row['gate'])}, "
                    f"switch {ms(row['switch'])}; "
                    f"{row['probe_failures']} probe failures)",
                    flush=True,
                )
    report.runs = [{"inside": i, "outside": o} for i, o in zip(*rows.values(), strict=True)]
    figures = {
        f"{kind}.{key}": summary([row[key] for row in found])
        for kind, found in rows.items()
        for key in (
            "latency",
            "curl_seconds",
            "to_queued",
            "queued",
            "boot",
            "gate",
            "switch",
            "rest",
            "probe_failures",
        )
    }
    for key, stats in figures.items():
        if key.endswith("probe_failures"):
            report.figure(key, stats, f"{key}: {sum(stats['values'])}")
        else:
            report.figure(key, stats, f"{key}: {spread(stats)}")
    inside = figures["inside.latency"]["median"]
    rest = figures["outside.rest"]["median"]
    failures = sum(figures[f"{k}.probe_failures"]["max"] for k in rows)
    report.verdict("inside: median <= 100 ms", inside <= INSIDE_TARGET, f"median {ms(inside)}")
    report.verdict(
        "outside: boot + gate + <= 0.5 s",
        rest <= OUTSIDE_REST_TARGET,
        f"median {ms(figures['outside.latency']['median'])} = boot "
        f"{ms(figures['outside.boot']['median'])} + gate {ms(figures['outside.gate']['median'])}"
        f" + {ms(rest)}",
    )
    report.figure("probe_failures_total", failures, f"failed probes during rollbacks: {failures}")
    report.write()


if __name__ == "__main__":
    main()
