"""`temps cron [APP]`: the app's scheduled jobs, one line each: name, schedule, next run, last
run and how it ended. `temps cron run [APP] NAME`: run one now; `temps cron runs [APP]`: the
recorded runs, newest first."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from receiver.cli.appwords import take_app
from receiver.cli.client import Client

COMMANDS = ("cron",)


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    cron = client_parser(
        "cron",
        "list an app's scheduled jobs ([[cron]] in temps.toml); `cron run [APP] NAME`: run one "
        "now; `cron runs [APP]`: the recorded runs",
    )
    cron.add_argument("words", nargs="*", metavar="[APP] | run [APP] NAME | runs [APP]")


def run(client: Client, args: argparse.Namespace) -> None:
    words = list(args.words)
    if words[:1] == ["run"]:
        app, rest = take_app(args.app_flag, words[1:], 2)
        if len(rest) != 1:
            raise SystemExit("temps: usage: temps cron run [APP] NAME")
        started = client.call("POST", f"/api/apps/{app}/cron/{rest[0]}/run")
        if started["state"] == "skipped":
            print(f"{rest[0]}: skipped: {started['detail']}")
        else:
            print(f"{rest[0]}: running on v{started['release']} (run {started['id']})")
        return
    if words[:1] == ["runs"]:
        app, _ = take_app(args.app_flag, words[1:], 1)
        for found in client.call("GET", f"/api/apps/{app}/cron/runs"):
            print(run_line(found))
        return
    app, _ = take_app(args.app_flag, words, 1)
    entries = client.call("GET", f"/api/apps/{app}/cron")
    if not entries:
        print(f"{app} has no scheduled jobs (add [[cron]] entries to temps.toml)")
        return
    print(f"{'NAME':<20} {'SCHEDULE':<18} {'NEXT (UTC)':<20} LAST")
    for entry in entries:
        print(entry_line(entry))


def when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def entry_line(entry: dict[str, Any]) -> str:
    last = entry["last_run"]
    ended = "-" if last is None else f"{when(last['scheduled_at'])} {outcome(last)}"
    schedule = entry["schedule"]
    if entry["timezone"] != "UTC":
        schedule = f"{schedule} ({entry['timezone']})"
    return f"{entry['name']:<20} {schedule:<18} {when(entry['next_run']):<20} {ended}"


def outcome(found: dict[str, Any]) -> str:
    if found["exit_code"] is not None:
        return f"{found['state']} (exit {found['exit_code']})"
    return str(found["state"])


def run_line(found: dict[str, Any], now: float | None = None) -> str:
    ended, started = found["ended_at"], found["started_at"]
    seconds = "-"
    if started is not None:
        seconds = f"{(ended if ended is not None else now or time.time()) - started:.1f}s"
    release = f"v{found['release']}" if found["release"] is not None else "-"
    return (
        f"{when(found['scheduled_at']):<20} {found['name']:<20} {release:<6} "
        f"{found['source']:<9} {seconds:>8}  {outcome(found)}"
    )
