"""build_starvation: a CPU-bound build beside a live app, with and without the build's low
CPU weight.

For each mode, a daemon of its own with the app `live` served and measured by `hey` through
Traefik: `idle` for the measuring window with no build, then again while another app's build
runs a `RUN` step that keeps every core busy for `--burn` seconds. `old` is the daemon with
`--build-cpu-shares 0` (a build weighs as much as an app container), `new` the default. The
figure is the live app's p99 during the build against its p99 idle, in the same run.

    .venv/bin/python bench/build_starvation.py [--runs 2] [--burn 20] [--rate 200]
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from common import (
    Hey,
    HeyResult,
    TempsDaemon,
    commit_app,
    header,
    ms,
    parse_args,
    push,
    running_daemon,
    write_file,
)

from tests.support.apprepo import git

RATIO_TARGET = 1.5
MODES = {"old": ["--build-cpu-shares", "0"], "new": []}
WORKERS = 10
BURNING = "burning every core"


def burn_step(cores: int, seconds: int) -> str:
    """A RUN step that keeps `cores` shell loops busy for `seconds`, new each time (a nonce)."""
    loop = f"e=$(($(date +%s)+{seconds})); while [ $(date +%s) -lt $e ]; do :; done"
    spawn = " ".join(f"({loop}) &" for _ in range(cores))
    return f'RUN echo "{BURNING} {uuid.uuid4().hex[:8]}"; {spawn} wait'


def measure(daemon: TempsDaemon, seconds: float, rate: float) -> HeyResult:
    hey = Hey(
        f"{daemon.http_url}/",
        f"live.{daemon.domain}",
        workers=WORKERS,
        qps_per_worker=rate / WORKERS,
        max_seconds=int(seconds) + 30,
    ).start()
    time.sleep(seconds)
    return hey.stop()


def during_build(
    daemon: TempsDaemon, repo: Path, number: int, args: Any
) -> tuple[HeyResult, float]:
    """hey on `live` while the builder's RUN step burns; (hey's result, push seconds)."""
    dockerfile = repo / "Dockerfile"
    lines = dockerfile.read_text().splitlines()
    lines = [line for line in lines if not line.startswith("RUN echo")]
    lines.insert(1, burn_step(os.cpu_count() or 1, args.burn))
    write_file(dockerfile, "\n".join(lines) + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"burn {number}")
    pushed: list[float] = []
    burning = threading.Event()

    def seen(line: str) -> None:
        # The step's echo of its own command says it too: the output line has no RUN.
        if BURNING in line and "RUN" not in line:
            burning.set()

    def run() -> None:
        result = push(repo, daemon.git_url("builder"), on_line=seen)
        pushed.append(result.seconds if result.code == 0 else -1.0)

    pusher = threading.Thread(target=run)
    pusher.start()
    if not burning.wait(120):
        raise RuntimeError("the builder's burning step never started")
    time.sleep(0.5)
    result = measure(daemon, args.burn - 4, args.rate)
    pusher.join(300)
    return result, pushed[0] if pushed else -1.0


def one_mode(report: Any, mode: str, flags: list[str], args: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with running_daemon(f"build-starvation-{mode}", extra_args=flags) as daemon:
        for app in ("live", "builder"):
            daemon.create_app(app)
            repo = daemon.home.parent / "repos" / app
            commit_app(repo, f"{app}-1")
            first = push(repo, daemon.git_url(app))
            if first.code != 0:
                raise RuntimeError(f"first push of {app} failed:\n{first.output}")
        builder = daemon.home.parent / "repos" / "builder"
        for run in range(args.runs):
            idle = measure(daemon, args.burn - 4, args.rate)
            busy, push_seconds = during_build(daemon, builder, run + 2, args)
            row = {
                "mode": mode,
                "run": run + 1,
                "idle_p99": idle.latency.get(99),
                "build_p99": busy.latency.get(99),
                "idle_p50": idle.latency.get(50),
                "build_p50": busy.latency.get(50),
                "idle_requests": idle.total,
                "build_requests": busy.total,
                "non_2xx": idle.non_2xx + busy.non_2xx + idle.error_count + busy.error_count,
                "builder_push_seconds": push_seconds,
                "load_average": os.getloadavg(),
            }
            ratio = (row["build_p99"] or 0) / (row["idle_p99"] or 1)
            row["ratio"] = round(ratio, 2)
            report.runs.append(row)
            print(
                f"  {mode} run {run + 1}: p99 idle {ms(row['idle_p99'])}, during the build "
                f"{ms(row['build_p99'])} ({ratio:.2f}x); p50 {ms(row['idle_p50'])} / "
                f"{ms(row['build_p50'])}; non-2xx {row['non_2xx']}; the build's push "
                f"{push_seconds:.1f} s; load {row['load_average'][0]:.2f}",
                flush=True,
            )
            rows.append(row)
    return rows


def main() -> None:
    args = parse_args(
        __doc__ or "",
        2,
        burn=(int, 20, "seconds the build step keeps every core busy"),
        rate=(float, 200.0, "requests per second hey sends to the live app"),
    )
    report = header("build_starvation", args)
    for mode, flags in MODES.items():
        rows = one_mode(report, mode, flags, args)
        ratios = sorted(row["ratio"] for row in rows)
        median = statistics.median(ratios)
        report.figure(
            f"{mode}_ratio", ratios, f"{mode}: p99 during the build / p99 idle, each run: {ratios}"
        )
        if mode == "new":
            report.verdict(
                f"live p99 during a CPU-bound build within {RATIO_TARGET}x of idle",
                max(ratios) <= RATIO_TARGET,
                f"{median:.2f}x median, {max(ratios):.2f}x worst of {len(ratios)}",
            )
    report.write()


if __name__ == "__main__":
    main()
