"""`temps login [URL]` and `temps logout`: a remote daemon's URL and token, kept for later
commands (receiver.cli.credentials), as `heroku login` and `fly auth login` keep theirs.

The token is read from standard input (a prompt that does not echo it on a terminal), never
from the command line, where it would stay in the shell's history and in `ps`. It is checked
against the daemon before it is stored."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from receiver.cli import credentials
from receiver.cli.client import trusted
from receiver.cli.target import local_install

COMMANDS = ("login", "logout")
CHECK_TIMEOUT = 30.0


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    login = client_parser(
        "login", "store a daemon's URL and token for later commands", of_app=False
    )
    login.add_argument("target", nargs="?", metavar="URL", help="default: the local install's")
    login.add_argument("--ca-file", type=Path, help="PEM of the CA that signs the daemon's cert")
    client_parser("logout", "forget what `temps login` stored", of_app=False)


def run(args: argparse.Namespace) -> None:
    if args.command == "logout":
        gone = credentials.forget()
        print(f"logged out of {gone.url}" if gone else "temps: not logged in")
        return
    url = (args.target or args.url or local_install().url).rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    ca_file = str(args.ca_file.resolve()) if args.ca_file else None
    token = _read_token(url)
    who = _check(url, token, ca_file)
    where = credentials.save(credentials.Stored(url, token, ca_file))
    scope = who["scope"] + (f" of {who['app']}" if who.get("app") else "")
    print(f"logged in to {url} as {who['name']} ({scope}); stored in {where}")


def _read_token(url: str) -> str:
    prompt = f"token for {url}: "
    token = (getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()).strip()
    if not token:
        sys.exit("temps: no token given: paste an admin or deploy token (`temps tokens create`)")
    return token


def _check(url: str, token: str, ca_file: str | None) -> dict[str, str]:
    import httpx

    try:
        response = httpx.get(
            f"{url}/api/whoami",
            headers={"Authorization": f"Bearer {token}"},
            verify=trusted(ca_file),
            timeout=CHECK_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        hint = "; name its CA with --ca-file" if "CERTIFICATE" in str(exc).upper() else ""
        sys.exit(f"temps: cannot reach {url}: {exc}{hint}")
    if response.status_code in (401, 403):
        sys.exit(f"temps: {url} refused the token ({response.status_code}); nothing stored")
    if response.status_code != 200:
        sys.exit(f"temps: {url} answered {response.status_code}; is it a temps daemon?")
    answer: dict[str, str] = response.json()
    return answer
