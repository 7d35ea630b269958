"""zero_downtime: 20 deploys in a row under steady load through Traefik, with 5 s requests in
flight at every switch, then a burst of pushes and rollbacks that do not wait for each other.

The 20 operations: 16 pushes, 2 failing pushes (health 404, crash at boot) and 2 rollbacks,
one inside the bake window (an instant flip to the standby slot) and one after it (boot and
gate of the old image). The load comes from Debian's `hey`, in two processes: one on
keep-alive connections, one opening a new connection per request. Two slow requests start
at every operation, before its switch; each must come back 200 from the release that was
live when it started.

The burst: 12 pushes and 4 rollbacks, each started 0.5-2 s after the one before whatever it
is doing, every release with a bake window: windows are cut short by the next push, standby
slots still finishing long requests are retired, queued pushes are superseded, rollbacks
land inside windows. Two slow requests start with every event; each must come back 200.

    .venv/bin/python bench/zero_downtime.py [--runs 1] [--rate 440]
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    Hey,
    HeyResult,
    Push,
    SlowRequest,
    TempsDaemon,
    commit_app,
    event_at,
    header,
    parse_args,
    push,
    rollback_with_curl,
    running_daemon,
    secs,
    summary,
)

from pipeline.release.states import IN_FLIGHT
from tests.support.wait import poll

PUSH_WAIT_SECONDS = 300

OPERATIONS = (
    ["push"] * 6
    + ["fail-404"]
    + ["push"] * 3
    + ["push-bake"]
    + ["rollback-inside"]
    + ["push"] * 2
    + ["fail-crash"]
    + ["push"] * 2
    + ["push-short-bake"]
    + ["rollback-outside"]
    + ["push"]
)
SLOW_PER_SWITCH = 2
LONG_BAKE = 60.0
SHORT_BAKE = 1.0
MAX_LOAD_SECONDS = 900
BURST = ["push", "push", "rollback", "push", "push", "push", "rollback", "push"] * 2
BURST_GAP = (0.5, 2.0)  # seconds between two events of the burst
BURST_SEED = 14


class Bench:
    def __init__(self, daemon: TempsDaemon, app: str, repo: Path) -> None:
        self.daemon, self.app, self.repo = daemon, app, repo
        self.host = f"{app}.{daemon.domain}"
        self.pushed = 1
        self.live = "c1"  # the code (index.html) the app serves now
        self.history = ["c1"]  # versions that went live, in order
        self.slow: list[dict[str, Any]] = []

    def slow_requests(self) -> list[SlowRequest]:
        return [
            SlowRequest(self.daemon.http_port, self.host).start() for _ in range(SLOW_PER_SWITCH)
        ]

    def push_version(self, **opts: Any) -> tuple[str, Push, list[SlowRequest]]:
        self.pushed += 1
        version = f"c{self.pushed}"
        commit_app(self.repo, version, **opts)
        started: list[SlowRequest] = []
        failing = "crash" in opts or opts.get("health", "ok") != "ok"
        if failing:
            started = self.slow_requests()

        def on_line(line: str) -> None:
            # The gate has begun: the switch is at least healthy_threshold probes away.
            if not started and "Health check" in line:
                started.extend(self.slow_requests())

        pushed = push(self.repo, self.daemon.git_url(self.app), on_line=on_line)
        return version, pushed, started

    def run(self, operation: str) -> dict[str, Any]:
        was = self.live
        began = time.time()
        slow: list[SlowRequest]
        if operation.startswith("push") or operation.startswith("fail"):
            opts: dict[str, Any] = {
                "push": {},
                "push-bake": {"bake": LONG_BAKE},
                "push-short-bake": {"bake": SHORT_BAKE},
                "fail-404": {"health": "404"},
                "fail-crash": {"crash": True},
            }[operation]
            version, pushed, slow = self.push_version(**opts)
            accepted = pushed.code == 0
            expected = not operation.startswith("fail")
            if accepted:
                self.live = version
                self.history.append(version)
            outcome = "accepted" if accepted else "rejected"
            ok = accepted == expected
            detail = pushed.output.splitlines()[-1] if not ok else ""
        else:
            if operation == "rollback-outside":
                # The bake window is over once the standby slot has retired.
                poll(
                    lambda: [r["state"] for r in self.daemon.releases(self.app)],
                    lambda states: "standby" not in states,
                    timeout=SHORT_BAKE + 30,
                    interval=0.1,
                )
            slow = self.slow_requests()
            time.sleep(0.3)  # the slow requests reach the live slot before the rollback
            done = rollback_with_curl(self.daemon, self.app)
            outcome = f"HTTP {done.status}, {done.body.get('state')}"
            ok = done.status == 200 and done.body.get("state") == "live"
            detail = "" if ok else str(done.body)[:300]
            if ok:
                self.history.pop()
                self.live = self.history[-1]
                self.history.append(self.live)
        newest = self.daemon.releases(self.app)[0]
        switched = event_at(newest, "switching")
        for request in slow:
            request.wait()
            self.slow.append(
                {
                    **request.to_dict(),
                    "operation": operation,
                    "expected_version": was,
                    "ok": request.status == 200 and request.body == f"slow done {was}",
                    "in_flight_at_switch": switched is not None
                    and request.sent < switched < request.received,
                }
            )
        return {
            "operation": operation,
            "release": newest["version"],
            "state": newest["state"],
            "outcome": outcome,
            "ok": ok,
            "detail": detail,
            "seconds": round(time.time() - began, 2),
            "serves": self.live,
        }


class Burst:
    """Events started one after another without waiting for the one before to finish."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.rows: list[dict[str, Any]] = []
        self.slow: list[tuple[str, SlowRequest]] = []
        self._lock = threading.Lock()

    def run(self) -> list[dict[str, Any]]:
        bench = self.bench
        rng = random.Random(BURST_SEED)
        commits: list[tuple[str, str]] = []
        for _ in range(BURST.count("push")):
            bench.pushed += 1
            version = f"c{bench.pushed}"
            commits.append((version, commit_app(bench.repo, version, bake=LONG_BAKE)))
        threads = []
        for index, event in enumerate(BURST, start=1):
            if event == "push":
                version, commit = commits.pop(0)
                work = self._pusher(index, version, commit)
            else:
                work = self._rollback(index)
            thread = threading.Thread(target=work, name=f"burst-{index}", daemon=True)
            thread.start()
            threads.append(thread)
            time.sleep(rng.uniform(*BURST_GAP))
        for thread in threads:
            thread.join(PUSH_WAIT_SECONDS)
        for _, request in self.slow:
            request.wait()
        return sorted(self.rows, key=lambda row: row["index"])

    def _start_slow(self, event: str) -> None:
        started = self.bench.slow_requests()
        with self._lock:
            self.slow.extend((event, request) for request in started)

    def _pusher(self, index: int, version: str, commit: str) -> Any:
        def work() -> None:
            self._start_slow(f"burst-push {version}")
            began = time.time()
            pushed = push(
                self.bench.repo,
                self.bench.daemon.git_url(self.bench.app),
                f"{commit}:refs/heads/main",
            )
            last = pushed.output.splitlines()[-1] if pushed.output else ""
            superseded = "superseded by a newer push" in pushed.output
            outcome = (
                "accepted" if pushed.code == 0 else ("superseded" if superseded else "rejected")
            )
            self._add(
                index, "burst-push", version, outcome, pushed.code == 0 or superseded, began, last
            )

        return work

    def _rollback(self, index: int) -> Any:
        def work() -> None:
            self._start_slow("burst-rollback")
            time.sleep(0.3)  # the slow requests reach the live slot before the rollback
            began = time.time()
            done = rollback_with_curl(self.bench.daemon, self.bench.app)
            state = str(done.body.get("state"))
            ok = done.status == 200 and state in ("live", "superseded")
            version = f"v{done.body.get('number')}"
            self._add(
                index,
                "burst-rollback",
                version,
                f"HTTP {done.status}, {state}",
                ok,
                began,
                "" if ok else str(done.body)[:300],
            )

        return work

    def _add(
        self,
        index: int,
        operation: str,
        release: str,
        outcome: str,
        ok: bool,
        began: float,
        detail: str,
    ) -> None:
        row = {
            "index": index,
            "operation": operation,
            "release": release,
            "outcome": outcome,
            "ok": ok,
            "detail": "" if ok else detail,
            "seconds": round(time.time() - began, 2),
        }
        with self._lock:
            self.rows.append(row)

    def slow_rows(self) -> list[dict[str, Any]]:
        return [
            {
                **request.to_dict(),
                "operation": event,
                "expected_version": "any",
                "ok": request.status == 200 and request.body.startswith("slow done c"),
                "in_flight_at_switch": False,
            }
            for event, request in self.slow
        ]


def load_line(result: HeyResult) -> str:
    errors = "; ".join(f"{n}x {text[:120]}" for text, n in result.errors.items())
    return (
        f"{result.total} requests, {result.rate:.0f} req/s, statuses {result.statuses}, "
        f"{result.error_count} errors{': ' + errors if errors else ''}"
    )


def one_run(daemon: TempsDaemon, run: int, rate: float) -> dict[str, Any]:
    app = f"steady{run}"
    daemon.create_app(app)
    repo = daemon.home.parent / "repos" / app
    commit_app(repo, "c1")
    first = push(repo, daemon.git_url(app))
    if first.code != 0:
        raise RuntimeError(f"first push failed:\n{first.output}")
    bench = Bench(daemon, app, repo)
    per_process = rate / 2 / 4  # two hey processes of four workers each
    loads = [
        Hey(
            daemon.http_url + "/",
            bench.host,
            workers=4,
            qps_per_worker=per_process,
            max_seconds=MAX_LOAD_SECONDS,
            keepalive=keepalive,
        ).start()
        for keepalive in (True, False)
    ]
    operations: list[dict[str, Any]] = []
    try:
        time.sleep(1.0)
        for index, operation in enumerate(OPERATIONS, start=1):
            row = bench.run(operation)
            operations.append(row)
            print(
                f"    {index:2d} {operation:17s} {row['release']:>4s} {row['state']:9s} "
                f"{row['outcome']:22s} {secs(row['seconds'])}  serves code {row['serves']}"
                + ("" if row["ok"] else f"  UNEXPECTED {row['detail']}"),
                flush=True,
            )
        print(f"  run {run}: burst of {len(BURST)} events 0.5-2 s apart", flush=True)
        burst = Burst(bench)
        for row in burst.run():
            operations.append(row)
            print(
                f"    {row['index']:2d} {row['operation']:17s} {row['release']:>4s} "
                f"{row['outcome']:22s} {secs(row['seconds'])}"
                + ("" if row["ok"] else f"  UNEXPECTED {row['detail']}"),
                flush=True,
            )
        bench.slow.extend(burst.slow_rows())
        settled = poll(
            lambda: daemon.releases(app),
            lambda rs: (
                rs[0]["state"] == "live" and all(r["state"] not in set(IN_FLIGHT) for r in rs)
            ),
            timeout=120,
            interval=0.2,
        )
        print(f"    settled on {settled[0]['version']}", flush=True)
        time.sleep(1.0)
    finally:
        results = [load.stop() for load in loads]
    keepalive, fresh = results
    print(f"    hey keep-alive:      {load_line(keepalive)}", flush=True)
    print(f"    hey new connections: {load_line(fresh)}", flush=True)
    return {
        "run": run,
        "operations": operations,
        "slow_requests": bench.slow,
        "hey": [
            {
                "command": r.command,
                "statuses": r.statuses,
                "errors": r.errors,
                "rate": r.rate,
                "seconds": r.seconds,
                "total": r.total,
            }
            for r in results
        ],
        "requests": sum(r.total for r in results),
        "rate": sum(r.rate for r in results),
        "non_2xx": sum(r.non_2xx for r in results),
        "errors": sum(r.error_count for r in results),
        "slow_ok": sum(1 for s in bench.slow if s["ok"]),
        "slow_total": len(bench.slow),
        "slow_in_flight_at_switch": sum(1 for s in bench.slow if s["in_flight_at_switch"]),
        "operations_as_expected": sum(1 for o in operations if o["ok"]),
        "switches": sum(1 for o in operations if not o["operation"].startswith("fail")),
        "burst_events": len(BURST),
        "burst_superseded": sum(1 for o in operations if o["outcome"] == "superseded"),
    }


def main() -> None:
    args = parse_args(
        "20 deploys, failures and rollbacks under load, 5 s requests at each switch",
        runs=1,
        rate=(float, 440.0, "requests per second asked of hey (default 440)"),
    )
    report = header("zero_downtime", args)
    with running_daemon("zero_downtime", args.profile) as daemon:
        for run in range(1, args.runs + 1):
            print(f"  run {run}: {len(OPERATIONS)} operations under load", flush=True)
            report.runs.append(one_run(daemon, run, args.rate))

    runs = report.runs
    total = sum(r["requests"] for r in runs)
    non_2xx = sum(r["non_2xx"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    slow_ok = sum(r["slow_ok"] for r in runs)
    slow_total = sum(r["slow_total"] for r in runs)
    in_flight = sum(r["slow_in_flight_at_switch"] for r in runs)
    rates = summary([r["rate"] for r in runs])
    as_expected = sum(r["operations_as_expected"] for r in runs)
    operations = (len(OPERATIONS) + len(BURST)) * len(runs)
    report.figure("requests", total, f"requests through Traefik: {total}")
    report.figure("rate", rates, f"load rate: median {rates['median']:.0f} req/s")
    report.figure("non_2xx", non_2xx, f"non-2xx answers: {non_2xx}")
    report.figure("errors", errors, f"connection errors: {errors}")
    report.figure(
        "slow",
        {"ok": slow_ok, "total": slow_total, "in_flight_at_switch": in_flight},
        f"5 s requests: {slow_ok}/{slow_total} answered 200 by the release live when they "
        f"started; {in_flight} were in flight at a switch",
    )
    report.figure(
        "operations",
        as_expected,
        f"operations with the expected outcome: {as_expected}/{operations}",
    )
    report.verdict("load >= 300 req/s", rates["min"] >= 300, f"{rates['min']:.0f} req/s")
    report.verdict("0 non-2xx", non_2xx == 0, f"{non_2xx} of {total}")
    report.verdict("0 connection errors", errors == 0, f"{errors} of {total}")
    report.verdict(
        "every long request 200",
        slow_total > 0 and slow_ok == slow_total,
        f"{slow_ok}/{slow_total} ({in_flight} in flight at a switch)",
    )
    report.write()


if __name__ == "__main__":
    main()
