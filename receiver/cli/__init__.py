"""`temps` on the command line: `temps serve` starts the daemon; every other command is a
client of its REST API."""

from __future__ import annotations

import argparse
import sys

from pipeline.errors import InvalidInput
from receiver.cli.client import env_or
from receiver.cli.commands import add_client_commands, run_client
from receiver.cli.serve import add_serve_command, serve, settings_from


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temps", description="git-push deploys with zero dropped requests"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_command(commands)
    add_client_commands(commands, env_or)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        run_client(args)
        return
    try:
        settings = settings_from(args)
    except InvalidInput as exc:
        sys.exit(f"temps: {exc}")
    serve(settings)
