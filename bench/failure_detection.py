"""failure_detection: how long after the cause a broken release's push is rejected.

Two broken releases of a live app, pushed in turn:
- crash: the container exits at once. Cause: the container's start (Docker's own event).
- 503: the health path answers 503. Cause: the first failing probe (the daemon's log line,
  as stored with its timestamp in the release log).
The rejection is the moment git prints `[remote rejected]`. The target is 2 probe intervals
(`interval` of temps.toml, 1 s by default as in the README). For the 503 release the gate
needs unhealthy_threshold (3) failures in a row; after the first one it probes every
`recheck_interval` (0.25 s by default), so 2 rechecks of it are the setting's own; the
figures also show what temps adds after the last failing probe.

    .venv/bin/python bench/failure_detection.py [--runs 3] [--interval 1.0]
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
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
    spread,
    summary,
)

THRESHOLD = 3  # unhealthy_threshold in the bench's temps.toml


class DockerEvents:
    """`docker events` for one app's containers, collected in the background."""

    def __init__(self, app: str) -> None:
        self.process = subprocess.Popen(
            [
                "docker",
                "events",
                "--format",
                "{{json .}}",
                "--filter",
                "type=container",
                "--filter",
                f"label=temps.app={app}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.thread.join(5)

    def at(self, container: str, status: str) -> float | None:
        for event in self.events:
            name = event.get("Actor", {}).get("Attributes", {}).get("name")
            if name == container and event.get("status") == status:
                return int(event["timeNano"]) / 1e9
        return None


def log_times(daemon: TempsDaemon, app: str, number: int) -> list[tuple[float, str]]:
    """(epoch, line) of a release's log, read from the daemon's database."""
    uri = f"file:{daemon.home / 'temps.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        rows = db.execute(
            "SELECT l.at, l.line FROM release_logs l JOIN releases r ON r.id = l.release_id "
            "JOIN apps a ON a.id = r.app_id WHERE a.name = ? AND r.number = ? ORDER BY l.id",
            (app, number),
        ).fetchall()
    return [(float(at), str(line)) for at, line in rows]


def first_line(lines: list[tuple[float, str]], needle: str) -> float | None:
    return next((at for at, line in lines if needle in line), None)


def broken_push(
    daemon: TempsDaemon, app: str, repo: Any, version: str, interval: float, kind: str
) -> dict[str, Any]:
    events = DockerEvents(app)
    time.sleep(0.2)  # docker events reports only what happens after it has subscribed
    try:
        if kind == "crash":
            commit_app(repo, version, crash=True, interval=interval)
        else:
            commit_app(repo, version, health="503", interval=interval)
        pushed = push(repo, daemon.git_url(app))
    finally:
        events.stop()
    rejected = pushed.first("[remote rejected]")
    if pushed.code == 0 or rejected is None:
        raise RuntimeError(f"the {kind} push was not rejected:\n{pushed.output}")
    release = daemon.releases(app)[0]
    lines = log_times(daemon, app, release["number"])
    if kind == "crash":
        container = str(release["container"])
        cause, noticed = events.at(container, "start"), events.at(container, "die")
    else:
        cause = first_line(lines, "(failure 1/")
        noticed = first_line(lines, f"(failure {THRESHOLD}/")
    # fail() stops and removes the new container, then writes this line, then records failed.
    gave_up = first_line(lines, "Deploy failed while")
    failed = event_at(release, "failed")
    marks = {"noticed": noticed, "torn_down": gave_up, "recorded": failed, "rejected": rejected}
    if cause is None or None in marks.values():
        raise RuntimeError(f"missing timestamps for {kind}: {marks}\n{lines}")
    row: dict[str, Any] = {
        "release": release["version"],
        "reason": release.get("failure_reason"),
        "rejected_after_push": rejected - pushed.started,
        "detection": rejected - cause,
        "marks": {key: at - cause for key, at in marks.items()},  # type: ignore[operator]
    }
    # noticed: the container died / the threshold's last failing probe; teardown: log tail,
    # stop and remove the container; record: the failed state; reply: back to git.
    previous = 0.0
    for part, key in (
        ("noticed", "noticed"),
        ("teardown", "torn_down"),
        ("record", "recorded"),
        ("reply", "rejected"),
    ):
        row[part] = row["marks"][key] - previous
        previous = row["marks"][key]
    return row


def main() -> None:
    args = parse_args(
        "time from a crash or a 503 to the rejected push",
        runs=3,
        interval=(float, 1.0, "healthcheck interval in seconds (default 1.0)"),
    )
    report = header("failure_detection", args)
    rows: dict[str, list[dict[str, Any]]] = {"crash": [], "503": []}
    with running_daemon("failure_detection", args.profile) as daemon:
        app = "fragile"
        daemon.create_app(app)
        repo = daemon.home.parent / "repos" / app
        commit_app(repo, "good", interval=args.interval)
        if push(repo, daemon.git_url(app)).code != 0:
            raise RuntimeError("the first push failed")
        for run in range(args.runs):
            for kind in rows:
                row = broken_push(daemon, app, repo, f"{kind}-{run}", args.interval, kind)
                rows[kind].append(row)
                print(
                    f"    run {run + 1} {kind:5s} {row['release']:>4s}: rejected "
                    f"{ms(row['detection'])} after the cause (noticed {ms(row['noticed'])}, "
                    f"teardown {ms(row['teardown'])}, record {ms(row['record'])}, "
                    f"reply {ms(row['reply'])})",
                    flush=True,
                )
    report.runs = [{"crash": c, "503": u} for c, u in zip(*rows.values(), strict=True)]
    limit = 2 * args.interval
    for kind, found in rows.items():
        for key in ("detection", "noticed", "teardown", "record", "reply", "rejected_after_push"):
            stats = summary([row[key] for row in found])
            report.figure(f"{kind}.{key}", stats, f"{kind} {key}: {spread(stats)}")
    added = {
        kind: summary([row["detection"] - row["noticed"] for row in found])
        for kind, found in rows.items()
    }
    for kind, stats in added.items():
        report.figure(
            f"{kind}.after_noticed",
            stats,
            f"{kind}, temps' part after the failure showed: {spread(stats)}",
        )
    for kind, cause in (("crash", "container start"), ("503", "first failing probe")):
        worst = summary([row["detection"] for row in rows[kind]])["max"]
        report.verdict(
            f"{kind}: rejected within 2 intervals ({limit:g} s) of the {cause}",
            worst <= limit,
            f"max {ms(worst)}",
        )
    report.write()


if __name__ == "__main__":
    main()
