"""`temps run [APP] [--tty] [--timeout S] [--] COMMAND...`: the command in a one-off container
of the app's live release, its output here as it comes, its exit code as temps' own; `temps
runs [APP]`: the app's runs, newest first.

Which words are the app: `-a APP` names it and every word is the command; else the word
before `--`; else, inside a repository whose `temps` remote names an app, the first word only
when it is that app (`temps run python manage.py migrate` runs in the remote's app, as
`heroku run` does); elsewhere the first word. Options may follow the app
(`temps run myapp --tty sh`); the command starts at `--` or at its first word.

temps' own exit codes, beside the command's: 124 when it ran out of time (as timeout(1)),
125 when it could not be run (refused, the daemon unreachable, the connection lost: as
`docker run`), 130 after Ctrl-C without a terminal.

The run is asked for with one plain POST, then attached to over a WebSocket
(receiver.cli.attach, imported only then).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from receiver.cli import remote, terminal
from receiver.cli.appwords import take_app
from receiver.cli.client import Client
from receiver.cli.target import resolve

COMMANDS = ("run", "runs")
TIMED_OUT, CANNOT_RUN, INTERRUPTED = 124, 125, 130


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    run = client_parser("run", "run a command in a one-off container of the live release")
    run.add_argument("-t", "--tty", action="store_true", help="an interactive terminal")
    run.add_argument(
        "--timeout", type=float, help="seconds before it is killed (default: the daemon's)"
    )
    run.add_argument("words", nargs=argparse.REMAINDER, metavar="[APP] [--] COMMAND")
    runs = client_parser("runs", "an app's one-off runs: who ran what, and how it ended")
    runs.add_argument("words", nargs="*", metavar="APP")


def run(args: argparse.Namespace) -> None:
    target = resolve(args.url, args.home)
    if args.command == "runs":
        client = Client(target.url, target.token, target.ca_file)
        app, _ = take_app(args.app_flag, args.words, 1)
        for row in client.call("GET", f"/api/apps/{app}/runs"):
            print(run_line(row))
        return
    app, tty, timeout, command = invocation(args)
    # Without a terminal, stdin goes along when it is a pipe or a file, not a terminal: a
    # command that never reads it must not keep the user's keys.
    stdin = tty or not terminal.is_terminal(sys.stdin.fileno())
    cols, rows = terminal.size(sys.stdout.fileno())
    body = {"command": command, "tty": tty, "stdin": stdin, "timeout": timeout}
    if tty:
        body |= {"cols": cols, "rows": rows}
    try:
        from receiver.cli import attach

        asked = attach.ask(target, f"/api/apps/{app}/runs", body, CANNOT_RUN)

        try:
            status = attach.session(target, asked["attach_url"], tty, stdin)
        except attach.NotAttached as refused:
            cannot_run(str(refused))
    except KeyboardInterrupt:
        # Anywhere from the ask to the end: the daemon kills and removes the container once
        # the socket closes (or, before it opens, when the attach never comes).
        print("\ntemps: interrupted: the run is stopped", file=sys.stderr)
        sys.exit(INTERRUPTED)
    finish(status)


def invocation(args: argparse.Namespace) -> tuple[str, bool, float | None, list[str]]:
    """(app, tty, timeout, command) from the words (see the top)."""
    words: list[str] = list(args.words)
    app: str | None = args.app_flag
    tty, timeout = bool(args.tty), args.timeout
    if app is None and words and not words[0].startswith("-"):
        inferred = None if "--" in words else remote.app()
        app = inferred if inferred is not None and words[0] != inferred else words.pop(0)
    while words and words[0].startswith("-"):
        word = words.pop(0)
        if word == "--":
            break
        if word in ("-t", "--tty"):
            tty = True
        elif word == "--timeout" and words:
            timeout = seconds(words.pop(0))
        elif word.startswith("--timeout="):
            timeout = seconds(word.partition("=")[2])
        else:
            sys.exit(f"temps: run: {word} is not an option of temps run: put the command after --")
    if not words:
        sys.exit("temps: run [APP] [--] COMMAND...: name the command to run")
    if app is None:
        app, _ = take_app(None, [], 1)
    return app, tty, timeout, words


def seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        sys.exit(f"temps: run: --timeout takes seconds, got {text!r}")


class Finished(SystemExit):
    """The run is over and `temps` exits with `exit_code` (receiver.cli.program ends the
    process there and then)."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def finish(status: dict[str, Any] | None) -> NoReturn:
    """Exit as the command did, or say why it did not end by itself."""
    if status is None:
        cannot_run("the connection to the daemon was lost before the command ended")
    code = status.get("exit_code")
    if status.get("state") == "exited" and isinstance(code, int) and 0 <= code <= 255:
        raise Finished(code)
    print(f"temps: the run {status.get('state')}: {status.get('detail')}", file=sys.stderr)
    raise Finished(TIMED_OUT if status.get("state") == "timed_out" else CANNOT_RUN)


def cannot_run(reason: str) -> NoReturn:
    print(f"temps: {reason}", file=sys.stderr)
    sys.exit(CANNOT_RUN)


def run_line(row: dict[str, Any]) -> str:
    ended = row["state"] if row["exit_code"] is None else f"exit {row['exit_code']}"
    command = " ".join(row["command"])
    return f"{row['id']:<6} v{row['release']:<5} {row['who']:<16} {ended:<14} {command}"
