"""skew: what a release kept for skew protection costs: the memory of its kept container
(`docker stats`, against the live release's container), and the latency of a request routed
to it by its id (`X-Temps-Release: v1`) against one without an id, through Traefik, on one
keep-alive connection each, alternated in rounds.

    .venv/bin/python bench/skew.py [--runs 5] [--requests 400]
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import httpx
from common import TempsDaemon, header, ms, parse_args, push, running_daemon, spread, summary

from tests.support.apprepo import make_app_repo
from tests.support.checks import container

KEEP = 600.0  # longer than the bench: the kept release stays while it is measured
UNITS = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}


def memory_mib(name: str) -> float:
    """The container's memory use as `docker stats --no-stream` reports it, in MiB."""
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", name],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found = re.match(r"\s*([0-9.]+)\s*([A-Za-z]+)", out)
    if found is None:
        raise RuntimeError(f"docker stats for {name}: {out!r}")
    return float(found.group(1)) * UNITS[found.group(2)]


def timed(client: httpx.Client, url: str, headers: dict[str, str], count: int) -> list[float]:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(url, headers=headers)
        took.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"HTTP {answer.status_code} for {headers}")
    return took


def main() -> None:
    args = parse_args(
        "memory and latency of a release kept for skew protection",
        runs=5,
        requests=(int, 400, "requests per kind and run"),
    )
    report = header("skew", args)
    settings = {"skew": {"keep": KEEP}}
    with running_daemon("skew", args.profile) as daemon:
        app = "kept"
        daemon.create_app(app)
        repo = daemon.home.parent / "repos" / app
        for version in ("v1", "v2"):
            make_app_repo(repo, version, settings=settings)
            pushed = push(repo, daemon.git_url(app))
            if pushed.code != 0:
                raise RuntimeError(f"push of {version} failed:\n{pushed.output}")
        kept = daemon.app(app)["kept_releases"]
        if [k["release"] for k in kept] != ["v1"]:
            raise RuntimeError(f"v1 is not kept: {kept}")
        rows = measure(daemon, app, args.runs, args.requests)
    report.runs = rows
    kept_mib = summary([row["kept_mib"] for row in rows])
    live_mib = summary([row["live_mib"] for row in rows])
    by_id = summary([t for row in rows for t in row["by_id"]])
    plain = summary([t for row in rows for t in row["plain"]])
    report.figure("kept_mib", kept_mib, f"kept v1 container: {kept_mib['median']:.2f} MiB")
    report.figure("live_mib", live_mib, f"live v2 container: {live_mib['median']:.2f} MiB")
    report.figure("by_id", by_id, f"request naming v1: {spread(by_id)}")
    report.figure("plain", plain, f"request naming none: {spread(plain)}")
    ratio = by_id["median"] / plain["median"]
    report.figure("ratio", ratio, f"by id against without, median: {ratio:.2f}x")
    report.write()


def measure(daemon: TempsDaemon, app: str, runs: int, requests: int) -> list[dict[str, Any]]:
    url, host = f"{daemon.http_url}/", f"{app}.{daemon.domain}"
    rows = []
    with (
        httpx.Client(headers={"Host": host}, timeout=10) as named,
        httpx.Client(headers={"Host": host}, timeout=10) as plain,
    ):
        for run in range(runs):
            row = {
                "kept_mib": memory_mib(container(app, 1)),
                "live_mib": memory_mib(container(app, 2)),
                "by_id": timed(named, url, {"X-Temps-Release": "v1"}, requests),
                "plain": timed(plain, url, {}, requests),
            }
            print(
                f"    run {run + 1}: kept {row['kept_mib']:.2f} MiB, live {row['live_mib']:.2f} "
                f"MiB; by id median {ms(summary(row['by_id'])['median'])}, "
                f"without {ms(summary(row['plain'])['median'])}",
                flush=True,
            )
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
