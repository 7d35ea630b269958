"""`temps statuses [APP]`: where the app's deploys report their state on their commits;
`temps statuses [APP] set github|gitlab [REPOSITORY] [--api-url URL]` sets it, `temps
statuses [APP] off` stops it (admin).

The token is read from `TEMPS_STATUS_TOKEN`, else a prompt (not echoed), else the first line
of standard input when it is not a terminal; never from the command line, where it would
stay in the shell's history and in `ps`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

from receiver.cli.appwords import take_app
from receiver.cli.client import Client, detail_of

COMMANDS = ("statuses",)
VERBS = ("set", "off")
TOKEN_VARIABLE = "TEMPS_STATUS_TOKEN"


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    statuses = client_parser(
        "statuses",
        "report each deploy's state on its commit to GitHub or GitLab: show, "
        f"`set [APP] github|gitlab [REPO]` (token from {TOKEN_VARIABLE} or stdin), `off`",
    )
    statuses.add_argument(
        "words", nargs="*", metavar="[APP] | [APP] set PROVIDER [REPO] | [APP] off"
    )
    statuses.add_argument("--api-url", help="the API of a self-hosted GitHub Enterprise or GitLab")


def run(client: Client, args: argparse.Namespace) -> None:
    words: list[str] = args.words
    at = next((i for i, word in enumerate(words[:2]) if word in VERBS), len(words))
    app, rest = take_app(args.app_flag, words[:at], 1)
    if rest:
        sys.exit("temps: statuses [APP] | [APP] set PROVIDER [REPO] | [APP] off")
    verb, given = (words[at], words[at + 1 :]) if at < len(words) else (None, [])
    path = f"/api/apps/{app}/statuses"
    if verb == "off":
        if given:
            sys.exit("temps: statuses [APP] off")
        response = client.http.delete(path)
        if response.status_code != 204:
            sys.exit(f"temps: {response.status_code}: {detail_of(response.content)}")
        print(f"{app} reports no commit statuses")
        return
    if verb == "set":
        if not 1 <= len(given) <= 2:
            sys.exit("temps: statuses [APP] set github|gitlab [REPO] [--api-url URL]")
        body = {"provider": given[0], "token": read_token()}
        if len(given) == 2:
            body["repository"] = given[1]
        if args.api_url:
            body["api_url"] = args.api_url
        print(shown(app, client.call("PUT", path, json=body)))
        return
    print(shown(app, client.call("GET", path)))


def shown(app: str, view: dict[str, Any]) -> str:
    if view["provider"] is None:
        return f"{app} reports no commit statuses (temps statuses {app} set github OWNER/REPO)"
    token = "token set" if view["token_set"] else "no token"
    whose = f" (the settings of {view['settings_of']})" if view["settings_of"] != app else ""
    contexts = ", ".join(view["contexts"].values())
    return (
        f"{view['provider']} {view['repository']} at {view['api_url']}, {token}{whose}\n"
        f"contexts: {contexts}"
    )


def read_token() -> str:
    token = os.environ.get(TOKEN_VARIABLE)
    if token is None:
        if sys.stdin.isatty():
            token = getpass.getpass("status API token: ")
        else:
            token = sys.stdin.readline()
    token = token.strip()
    if not token:
        sys.exit(f"temps: a token is needed: set {TOKEN_VARIABLE}, or give it on standard input")
    return token
