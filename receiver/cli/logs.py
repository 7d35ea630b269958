"""`temps logs [APP]`: what an app's containers print, `--tail` to follow it across deploys
(as `heroku logs --tail`); `temps releases output [APP] [N]`: a release's deploy log (as
Heroku's `releases:output`).

`temps logs APP N` printed release N's deploy log before there were runtime logs: a release
number after the app still does, with a line on stderr that names the new verb.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from receiver.cli.appwords import take_app
from receiver.cli.client import Client

COMMANDS = ("logs",)
USAGE = "temps logs [APP] [--tail] [-n N] [--process TYPE] [--since WHEN]"


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    logs = client_parser(
        "logs",
        "what an app's containers print, each line with its process (web.1, worker.1) and "
        "time; --tail follows it across deploys (a release's deploy log: releases output)",
    )
    logs.add_argument("words", nargs="*", metavar="APP")
    logs.add_argument(
        "--tail",
        "-t",
        "--follow",
        "-f",
        dest="follow",
        action="store_true",
        help="keep printing lines as they come, until interrupted",
    )
    logs.add_argument(
        "-n",
        "--num",
        dest="lines",
        type=int,
        metavar="N",
        help="the newest N lines first (default 100; with --since, every line since then)",
    )
    logs.add_argument("--process", "-p", metavar="TYPE", help="one process type: web, worker...")
    logs.add_argument("--since", metavar="WHEN", help="10m, 90s, 2h, 1d, or an RFC 3339 time")


def run(client: Client, args: argparse.Namespace) -> None:
    # Here, not with the parser that every command builds: it brings pipeline.runtime.
    from pipeline.applogs.lines import MAX_LINES

    words = list(args.words)
    if words and words[-1].isdigit():
        number = int(words.pop())
        app, _ = take_app(args.app_flag, words, 1)
        print(
            f"temps: release {number}'s deploy log is `temps releases output {app} {number}` "
            f"now; `temps logs {app}` shows what its containers print",
            file=sys.stderr,
        )
        release_output(client, app, number, args.follow)
        return
    if len(words) > 1:
        sys.exit(f"usage: {USAGE}")
    app, _ = take_app(args.app_flag, words, 1)
    query: dict[str, str] = {"follow": "true" if args.follow else "false"}
    if args.lines is not None and not 0 <= args.lines <= MAX_LINES:
        sys.exit(f"temps: -n takes 0 to {MAX_LINES:,} lines, got {args.lines}")
    if args.lines is not None:
        query["lines"] = str(args.lines)
    if args.process:
        query["process"] = args.process
    if args.since:
        query["since"] = args.since
    client.stream(f"/api/apps/{app}/logs", query, follow=args.follow)


def run_output(client: Client, args: argparse.Namespace) -> None:
    """`temps releases output [APP] [N] [--follow]`."""
    words = list(args.words[1:])
    number = int(words.pop()) if words and words[-1].isdigit() else None
    if len(words) > 1:
        sys.exit("usage: temps releases output [APP] [N] [--follow]")
    app, _ = take_app(args.app_flag, words, 1)
    release_output(client, app, number, args.follow)


def release_output(client: Client, app: str, number: int | None, follow: bool) -> None:
    """Release `number`'s deploy log (default: the newest release's), followed while the
    deploy runs with `follow`."""
    if number is None:
        releases = client.call("GET", f"/api/apps/{app}/releases?limit=1")
        if not releases:
            sys.exit(f"temps: {app} has no release yet")
        number = releases[0]["number"]
    query = {"follow": "true" if follow else "false"}
    client.stream(f"/api/apps/{app}/releases/{number}/log", query, follow=follow)
