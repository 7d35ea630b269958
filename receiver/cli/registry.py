"""`temps registry login|logout|list`: the registries image deploys pull from (admin).

The username and password are read from a prompt (the password not echoed), or as two
lines of standard input when it is not a terminal (`printf '%s\\n%s\\n' "$USER" "$PASS" |
temps registry login ...` in a CI job), never from the command line, where they would stay
in the shell's history and in `ps`. The daemon checks them with the registry before it
keeps them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from urllib.parse import quote

from receiver.cli.client import Client, detail_of

COMMANDS = ("registry",)


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    registry = client_parser(
        "registry", "log in to or out of an image registry, or list them (admin)", of_app=False
    )
    registry.add_argument("action", choices=["login", "logout", "list"])
    registry.add_argument("registry", nargs="?", metavar="REGISTRY", help="HOST[:PORT]")


def run(client: Client, args: argparse.Namespace) -> None:
    if args.action == "list":
        for login in client.call("GET", "/api/registries"):
            print(f"{login['registry']:<40} {login['username']}")
        return
    if not args.registry:
        sys.exit(f"temps: registry {args.action} REGISTRY")
    path = f"/api/registries/{quote(args.registry, safe=':')}"
    if args.action == "logout":
        response = client.http.delete(path)
        if response.status_code != 204:
            sys.exit(f"temps: {response.status_code}: {detail_of(response.content)}")
        print(f"logged out of {args.registry}")
        return
    username, password = _read_login(args.registry)
    login = client.call("PUT", path, json={"username": username, "password": password})
    print(f"logged in to {login['registry']} as {login['username']}")


def _read_login(registry: str) -> tuple[str, str]:
    if sys.stdin.isatty():
        username = input(f"username for {registry}: ").strip()
        password = getpass.getpass(f"password for {registry}: ")
    else:
        username = sys.stdin.readline().strip()
        password = sys.stdin.readline().rstrip("\r\n")
    if not username or not password:
        sys.exit("temps: a username and a password are needed, one per line on standard input")
    return username, password
