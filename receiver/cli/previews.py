"""`temps previews [APP]`: the app's previews (review apps), one line each: its branch, how
old it is, the commit it runs, its URL."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from receiver.cli.appwords import take_app
from receiver.cli.client import Client

COMMANDS = ("previews",)


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    previews = client_parser("previews", "list an app's previews: one per branch pushed")
    previews.add_argument("words", nargs="*", metavar="APP")


def run(client: Client, args: argparse.Namespace) -> None:
    app, _ = take_app(args.app_flag, args.words, 1)
    listed = client.call("GET", f"/api/apps/{app}/previews")
    if not listed:
        print(f"{app} has no previews (turn them on with [preview] enabled = true in temps.toml)")
        return
    for preview in listed:
        print(line(preview))


def line(preview: dict[str, Any], now: float | None = None) -> str:
    live = preview["live_release"]
    commit = live["commit"][:12] if live else "-"
    version = live["version"] if live else "-"
    age = age_of(preview["created_at"], time.time() if now is None else now)
    return f"{preview['branch']:<32} {age:>8} {version:<6} {commit:<12} {preview['url']}"


def age_of(at: float, now: float) -> str:
    """How long ago, in the largest whole unit: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(now - at))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
