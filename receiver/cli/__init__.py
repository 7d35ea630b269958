"""`temps` on the command line: `temps serve` starts the daemon; every other command is a
client of its REST API.

The daemon's flags are made from its settings' model (receiver.cli.serve), which takes
pydantic and pydantic-settings to import: a client command does without them, and starts
a quarter of a second sooner (BENCHMARKS.md, "One-off runs").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from receiver.cli.client import env_or
from receiver.cli.commands import SERVE_HELP, add_client_commands, add_run_commands, run_client
from receiver.cli.run import Finished


def build_parser(serving: bool = True, running: bool = False) -> argparse.ArgumentParser:
    """The parser of every command; without `serving`, `serve` is named but takes no flags;
    with `running`, only `run` and `runs` are (a one-off run starts sooner)."""
    parser = argparse.ArgumentParser(
        prog="temps", description="git-push deploys with zero dropped requests"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    if running:
        add_run_commands(commands)
        return parser
    if serving:
        from receiver.cli.serve import add_serve_command

        add_serve_command(commands)
    else:
        commands.add_parser("serve", help=SERVE_HELP)
    add_client_commands(commands, env_or)
    return parser


def parsed(parser: argparse.ArgumentParser, words: list[str]) -> argparse.Namespace:
    """The command line, with a verb's options anywhere among its words, as Heroku's CLI
    takes them (`temps config set KEY=VALUE -a myapp`): argparse ends a list of words at the
    first option, so the words after it are put back."""
    args, extra = parser.parse_known_args(words)
    if extra and isinstance(getattr(args, "words", None), list) and "--" not in words:
        unknown = [word for word in extra if word.startswith("-")]
        if not unknown:
            args.words += extra
            return args
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> None:
    words = sys.argv[1:] if argv is None else argv
    verb = words[:1]
    args = parsed(build_parser(verb == ["serve"], verb in (["run"], ["runs"])), words)
    if args.command != "serve":
        # Ctrl-C ends a tail or a run even when the shell that started `temps` left SIGINT
        # ignored (a command started in the background by a script inherits that, and then
        # Python installs no handler of its own).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run_client(args)
        return
    from pipeline.errors import InvalidInput
    from receiver.cli.serve import serve, settings_from

    try:
        settings = settings_from(args)
    except InvalidInput as exc:
        sys.exit(f"temps: {exc}")
    serve(settings)


def program() -> None:
    """The `temps` executable ([project.scripts]): `main` on its command line.

    A one-off run ends its process as soon as the run is over: its output is written and
    flushed, its terminal restored and its socket closed by then, and the interpreter's own
    teardown of every module and object took 20 to 30 ms more of each `temps run` on a busy
    machine (BENCHMARKS.md, "One-off runs"). Called as a function, `main` raises as before."""
    try:
        main()
    except Finished as finished:
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to flush to
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(finished.exit_code)
