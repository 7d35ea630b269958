"""soak: a day of deploys leaks nothing (issue 28).

Three apps under steady load from `hey` (--rate requests per second each, for the whole run),
and --deploys operations across them. Each app goes through the same cycle of ten:
push, push, rollback, scale to web=2, push (two containers), scale back to web=1, config
change (a release of the live image), a failing push (health 404, rejected), a canary push
(judged on the load, then promoted), push. The apps run their cycles side by side, as apps
deploy in parallel; `soak-c` has a 3 s bake window, so its rollback is the flip to the
standby slot, where the others boot the old image again. A scale makes no release but boots
and gates or drains and stops containers: it counts as one of the --deploys.

Every --sample-seconds: the daemon's RSS (anonymous and mapped files), open fds, threads,
children and memory mappings, Traefik's RSS and fds, the SQLite file, the home's disk use by
part, the pack files of the apps' repositories, this home's images and containers in Docker;
each sample with the number of operations finished. After the first full cycle of
every app (each has then built more than keep_releases images, so pruning has work) and at
the end, the deploys pause until every app has settled and one more sample is taken.

Targets: 0 failed requests; no growth of the daemon's RSS, fds and threads beyond the first
--warmup operations, within noise (the least-squares slope per 100 operations, and the rise
it makes over the run against twice the samples' spread around the line); the home's disk
use (outside the records, git history and logs, which grow by design) and Docker's images
of the home no higher at the end than after the first cycle, and its containers those of the
live formations.

With --heaptrack, the daemon's live heap as well (bench/soak_heap.py): what it holds, where
the RSS also counts what the allocators keep after freeing.

    .venv/bin/python bench/soak.py [--deploys 300] [--rate 20] [--sample-seconds 2] [--heaptrack]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    Hey,
    HeyResult,
    commit_app,
    header,
    parse_args,
    push,
    rollback_with_curl,
    running_daemon,
    secs,
    write_file,
)
from soak_figures import report_figures, report_verdicts
from soak_heap import add_heap, live_timeline, started_at, traced_env
from soak_samples import REST, Sampler

from pipeline.release.states import IN_FLIGHT, ReleaseState
from tests.support.apprepo import git
from tests.support.daemon import TempsDaemon
from tests.support.wait import poll

APPS = {"soak-a": 0.0, "soak-b": 0.0, "soak-c": 3.0}  # name: bake window (s)
CYCLE = (
    "push",
    "push",
    "rollback",
    "scale-up",
    "push",
    "scale-down",
    "config",
    "fail",
    "canary",
    "push",
)
# Judged on the load: at --rate 20, half to the canary, 40 requests take about 4 s. The
# soak is about what deploys leave behind, not the judgement: on two busy cores a new
# container's p95 was 17 ms against the live one's 5, and withdrew it at the default ratio.
CANARY = "\n[canary]\nweight = 50\nduration = 10\nmin_requests = 40\nmax_p95_ratio = 10.0\n"
API_TIMEOUT = 300.0
SETTLE_SECONDS = 120.0
PRUNE_GRACE = 3.0  # seconds after the last bake window for the prune that follows it


@dataclass
class SoakApp:
    daemon: TempsDaemon
    name: str
    repo: Path
    bake: float
    commits: int = 0

    def commit(self, **options: Any) -> str:
        self.commits += 1
        version = f"{self.name}-{self.commits}"
        commit_app(self.repo, version, bake=self.bake, **options)
        return version

    def run(self, operation: str, index: int) -> tuple[bool, str]:
        """Do one operation; (whether it ended as expected, what it said if not)."""
        if operation in ("push", "fail", "canary"):
            version = self.commit(health="404" if operation == "fail" else "ok")
            if operation == "canary":
                toml = (self.repo / "temps.toml").read_text()
                toml = toml.replace("bake = ", 'strategy = "canary"\nbake = ') + CANARY
                write_file(self.repo / "temps.toml", toml)
                git(self.repo, "add", "-A")
                git(self.repo, "commit", "-q", "-m", f"{version} as a canary")
            pushed = push(self.repo, self.daemon.git_url(self.name))
            ok = (pushed.code == 0) == (operation != "fail")
            lines = pushed.output.splitlines() or [""]
            reason = next((line for line in lines if "[remote rejected]" in line), lines[-1])
            return ok, "" if ok else reason[:300]
        if operation == "rollback":
            done = rollback_with_curl(self.daemon, self.name)
            ok = done.status == 200 and done.body.get("state") == ReleaseState.LIVE
            return ok, "" if ok else f"HTTP {done.status} {str(done.body)[:300]}"
        with self.daemon.client() as api:
            if operation == "config":
                response = api.patch(
                    f"/api/apps/{self.name}/config",
                    params={"wait": "true"},
                    json={"env": {"SOAK_OPERATION": str(index)}},
                    timeout=API_TIMEOUT,
                )
                release = response.json().get("release") or {}
                ok = response.status_code == 200 and release.get("state") == ReleaseState.LIVE
            else:
                web = 2 if operation == "scale-up" else 1
                response = api.patch(
                    f"/api/apps/{self.name}/formation", json={"web": web}, timeout=API_TIMEOUT
                )
                ok = response.status_code == 200
        return ok, "" if ok else f"HTTP {response.status_code} {response.text[:300]}"


class Operations:
    """Operation k goes to app k mod 3, at step (k // 3) mod the length of its cycle (ten
    steps unless --cycle says otherwise); each app runs its own in order, in a thread of its
    own."""

    def __init__(self, apps: list[SoakApp], deadline: float, cycle: tuple[str, ...]) -> None:
        self.apps, self.deadline, self.cycle = apps, deadline, cycle
        self.rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.sampler: Sampler | None = None  # for the figures printed with each operation

    def done(self) -> int:
        with self._lock:
            return len(self.rows)

    def run(self, indexes: range) -> None:
        threads = [
            threading.Thread(
                target=self._lane, args=(app, indexes), name=f"soak-{app.name}", daemon=True
            )
            for app in self.apps
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, self.deadline - time.monotonic()) + API_TIMEOUT)

    def _lane(self, app: SoakApp, indexes: range) -> None:
        lane = self.apps.index(app)
        for index in indexes:
            if index % len(self.apps) != lane or time.monotonic() > self.deadline:
                continue
            operation = self.cycle[(index // len(self.apps)) % len(self.cycle)]
            began = time.time()
            try:
                ok, detail = app.run(operation, index)
            except Exception as exc:  # a bench goes on and reports it
                ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
            row: dict[str, Any] = {
                "index": index,
                "app": app.name,
                "operation": operation,
                "ok": ok,
                "detail": detail,
                "started": began,
                "seconds": round(time.time() - began, 2),
            }
            with self._lock:
                self.rows.append(row)
                done = len(self.rows)
            latest = self.sampler.latest() if self.sampler else {}
            print(
                f"    {done:4d} {app.name} {operation:10s} {secs(row['seconds']):>8s}  "
                f"rss {latest.get('daemon_rss_mib') or 0:.1f} MiB, "
                f"fds {latest.get('daemon_fds')}, threads {latest.get('daemon_threads')}"
                + ("" if ok else f"  UNEXPECTED {detail}"),
                flush=True,
            )


def settle(daemon: TempsDaemon, apps: list[str]) -> bool:
    """Until no app has a deploy in flight or a slot on standby (then its prune runs)."""

    def busy() -> list[str]:
        return [
            app
            for app in apps
            for release in daemon.releases(app, limit=5)
            if release["state"] in (*IN_FLIGHT, ReleaseState.STANDBY)
        ]

    still = poll(busy, lambda found: not found, timeout=SETTLE_SECONDS, interval=0.5)
    time.sleep(PRUNE_GRACE)
    return not still


def formations(daemon: TempsDaemon, apps: list[str]) -> int:
    """How many containers the apps' live releases should run, all together."""
    count = 0
    with daemon.client() as api:
        for app in apps:
            response = api.get(f"/api/apps/{app}/formation")
            response.raise_for_status()
            count += sum((response.json()["live_formation"] or {}).values())
    return count


def first_push(daemon: TempsDaemon, name: str, bake: float) -> SoakApp:
    daemon.create_app(name)
    app = SoakApp(daemon, name, daemon.home.parent / "repos" / name, bake)
    app.commit()
    pushed = push(app.repo, daemon.git_url(name))
    if pushed.code != 0:
        raise RuntimeError(f"first push of {name} failed:\n{pushed.output}")
    return app


def soak(daemon: TempsDaemon, args: argparse.Namespace) -> dict[str, Any]:
    apps = [first_push(daemon, name, bake) for name, bake in APPS.items()]
    names = [app.name for app in apps]
    budget = args.max_minutes * 60
    loads = [
        Hey(
            f"{daemon.http_url}/",
            f"{name}.{daemon.domain}",
            workers=2,
            qps_per_worker=args.rate / 2,
            max_seconds=int(budget + 2 * SETTLE_SECONDS + 60),
        ).start()
        for name in names
    ]
    operations = Operations(apps, time.monotonic() + budget, args.cycle)
    sampler = Sampler(daemon, names, operations.done, args.sample_seconds, budget + 600)
    operations.sampler = sampler.start()
    began = time.monotonic()
    settled: dict[str, Any] = {}
    try:
        cycle = len(apps) * len(args.cycle)
        operations.run(range(min(cycle, args.deploys)))
        if args.deploys > cycle:
            settled["after_first_cycle"] = settle(daemon, names)
            sampler.extra("start")["formations"] = formations(daemon, names)
            print(f"  after the first cycle: {summary_line(sampler.latest())}", flush=True)
            operations.run(range(cycle, args.deploys))
        settled["at_end"] = settle(daemon, names)
        sampler.extra("end")["formations"] = formations(daemon, names)
        print(f"  at the end: {summary_line(sampler.latest())}", flush=True)
    finally:
        wall = time.monotonic() - began
        samples = sampler.stop()
        results = [load.stop() for load in loads]
    return {
        "operations": sorted(operations.rows, key=lambda row: row["index"]),
        "samples": samples,
        "settled": settled,
        "wall_seconds": wall,
        "hey": [hey_row(name, result) for name, result in zip(names, results, strict=True)],
    }


def hey_row(app: str, result: HeyResult) -> dict[str, Any]:
    return {
        "app": app,
        "command": result.command,
        "statuses": result.statuses,
        "errors": result.errors,
        "rate": result.rate,
        "seconds": result.seconds,
        "total": result.total,
        "non_2xx": result.non_2xx,
        "error_count": result.error_count,
    }


def summary_line(sample: dict[str, Any]) -> str:
    images = sample.get("images") or {}
    return (
        f"daemon {sample.get('daemon_rss_mib') or 0:.1f} MiB, {sample.get('daemon_fds')} fds, "
        f"{sample.get('daemon_threads')} threads; Traefik {sample.get('traefik_rss_mib') or 0:.1f}"
        f" MiB; SQLite {sample['sqlite_bytes'] / 1024:.0f} KiB; home "
        f"{sample['home_bytes'] / 2**20:.1f} MiB (rest {sample['home_parts'][REST] / 1024:.0f} "
        f"KiB); images {images.get('tagged')} tagged ({images.get('bytes', 0) / 2**20:.1f} MiB), "
        f"{images.get('untagged')} untagged; containers {sample.get('containers')}"
    )


def main() -> None:
    args = parse_args(
        "a day of deploys, rollbacks, scales and canaries on 3 apps under load",
        runs=1,
        deploys=(int, 300, "operations across the apps (default 300)"),
        rate=(float, 20.0, "requests per second to each app (default 20)"),
        sample_seconds=(float, 2.0, "seconds between samples (default 2)"),
        warmup=(int, 20, "operations before the trends start (default 20)"),
        max_minutes=(float, 120.0, "no operation starts after this (default 120)"),
        series_retention=(float, 300.0, "seconds of traffic series kept (default 300)"),
        cycle=(str, ",".join(CYCLE), "each app's cycle of operations, comma-separated"),
        heaptrack=(bool, False, "trace the daemon's heap with heaptrack (bench/soak_heap.py)"),
    )
    args.cycle = tuple(args.cycle.split(","))
    unknown = set(args.cycle) - set(CYCLE)
    if unknown:
        raise SystemExit(f"unknown operations: {sorted(unknown)}; known: {sorted(set(CYCLE))}")
    report = header("soak", args)
    # A short series retention, so the run shows the store held to it (pipeline.series).
    retention = ["--series-retention", f"{args.series_retention:g}"]
    with tempfile.TemporaryDirectory(prefix="temps-soak-heap-") as scratch:
        record = Path(scratch) / "heaptrack.raw"
        env = traced_env(record) if args.heaptrack else None
        with running_daemon("soak", args.profile, extra_args=retention, env=env) as daemon:
            assert daemon.process is not None
            started = started_at(daemon.process.pid)
            run = soak(daemon, args)
        if args.heaptrack:
            add_heap(run["samples"], live_timeline(record, started))
    run["series_retention"] = args.series_retention
    report.runs.append(run)
    report_figures(report, run, args.warmup)
    report_verdicts(report, args.warmup)
    report.write()


if __name__ == "__main__":
    main()
