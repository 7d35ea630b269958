"""run_roundtrip: `temps run myapp -- true` against `docker run --rm` of the same image, on the
same machine, in alternated rounds.

Each is timed from the command's start to its exit, as a user's shell would: for temps the
CLI's own start, the POST that asks for the run, the attach (create, attach, start), the
relay, the exit code (the container is removed after the answer); for docker the CLI, create,
attach, start, wait and the removal `--rm` waits for. The order turns from round to round.
Alongside: the same run asked for and attached to from this process (the API's round trip,
without the CLI's start), `temps --help` (the CLI's start, which a Go binary does not pay)
and, from the daemon's records of each run, its asked -> started (create, attach, start) and
started -> ended (the command and its exit code) times.

The CLI runs from this checkout's editable install. An install (`install.sh`, pip) holds the
project's modules compiled; an editable one compiles them at first import, and with
PYTHONDONTWRITEBYTECODE set (as some shells and CI images do) at every start. So the bench
compiles them first, as the install would have.

    .venv/bin/python bench/run_roundtrip.py [--runs 20]
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
from common import (
    REPO_ROOT,
    commit_app,
    header,
    parse_args,
    push,
    running_daemon,
    spread,
    summary,
)
from websockets.sync.client import connect

from tests.support.daemon import TEMPS_BIN, TempsDaemon

TARGET = 1.5  # temps' median against docker's
WARM_UP = 2


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def command(argv: list[str], env: dict[str, str] | None = None) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr!r}")

    return run


def through_the_api(daemon: TempsDaemon, app: str) -> Callable[[], None]:
    """What the CLI does once started: ask, attach, relay to the status."""
    token = {"Authorization": f"Bearer {daemon.admin_token}"}
    api = httpx.Client(base_url=daemon.api_url, headers=token, timeout=60)

    def run() -> None:
        asked = api.post(f"/api/apps/{app}/runs", json={"command": ["true"]})
        url = daemon.api_url.replace("http", "ws", 1) + asked.json()["attach_url"]
        with connect(url, additional_headers=token) as socket:
            last = list(socket)[-1]
        if not isinstance(last, bytes) or json.loads(last[1:])["exit_code"] != 0:
            raise RuntimeError(f"the run through the API ended with {last!r}")

    return run


def client_env(daemon: TempsDaemon) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPS_")}
    return env | {"TEMPS_URL": daemon.api_url, "TEMPS_TOKEN": daemon.admin_token}


def main() -> None:
    args = parse_args(__doc__ or "", runs=20)
    report = header("run_roundtrip", args)
    for package in ("receiver", "pipeline"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)
    with running_daemon("run_roundtrip") as daemon:
        image = live_app_image(daemon, "rt")
        env = client_env(daemon)
        ways = {
            "temps": command([str(TEMPS_BIN), "run", "rt", "--", "true"], env),
            "docker": command(["docker", "run", "--rm", image, "true"]),
            "api": through_the_api(daemon, "rt"),
            "cli_start": command([str(TEMPS_BIN), "--help"]),
        }
        for _ in range(WARM_UP):
            for way in ways.values():
                timed(way)
        names = list(ways)
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            seconds = {name: timed(ways[name]) for name in order}
            print("    round " + f"{run + 1}: " + ", ".join(
                f"{name} {seconds[name] * 1000:.0f} ms" for name in names
            ), flush=True)  # fmt: skip
            report.runs.append(
                {
                    **seconds,
                    "ratio": seconds["temps"] / seconds["docker"],
                    "api_ratio": seconds["api"] / seconds["docker"],
                }
            )
        records = daemon_times(daemon, "rt", args.runs * 2)
    for name, about in (
        ("temps", "temps run rt -- true"),
        ("docker", "docker run --rm <image> true"),
        ("api", "the same run through the API from this process (no CLI start)"),
        ("cli_start", "temps --help (the CLI's own start)"),
    ):
        stats = summary([r[name] for r in report.runs])
        report.figure(name, stats, f"{about}: {spread(stats)}")
    for name, about in (
        ("asked_to_started", "daemon: asked -> started (create, attach, start)"),
        ("started_to_ended", "daemon: started -> ended (the command and its exit)"),
    ):
        stats = summary([r[name] for r in records])
        report.figure(name, stats, f"{about}: {spread(stats)}")
    ratio = report.figures["temps"]["median"] / report.figures["docker"]["median"]
    paired = summary([r["ratio"] for r in report.runs])
    api_ratio = report.figures["api"]["median"] / report.figures["docker"]["median"]
    report.figure("ratio", ratio, f"temps against docker, medians: {ratio:.2f}x")
    report.figure(
        "api_ratio", api_ratio, f"the API's run against docker, medians: {api_ratio:.2f}x"
    )
    report.figure(
        "paired_ratio",
        paired,
        f"temps against docker, round by round: {spread(paired, lambda v: f'{v:.2f}x')}",
    )
    report.verdict(
        f"temps run round trip <= {TARGET}x docker run --rm", ratio <= TARGET, f"{ratio:.2f}x"
    )
    report.write()


def live_app_image(daemon: TempsDaemon, app: str) -> str:
    """The image of the app, pushed and live."""
    daemon.create_app(app)
    repo = daemon.home.parent / "repos" / app
    commit_app(repo, "v1")
    if push(repo, daemon.git_url(app)).code != 0:
        raise RuntimeError(f"the push of {app} failed")
    return str(daemon.app(app)["live_release"]["image"])


def daemon_times(daemon: TempsDaemon, app: str, count: int) -> list[dict[str, Any]]:
    """The last `count` runs' own times, from the daemon's records."""
    with daemon.client() as api:
        rows = api.get(f"/api/apps/{app}/runs").json()[:count]
    return [
        {
            "asked_to_started": row["started_at"] - row["created_at"],
            "started_to_ended": row["ended_at"] - row["started_at"],
        }
        for row in rows
        if row["started_at"] and row["ended_at"]
    ]


if __name__ == "__main__":
    main()
