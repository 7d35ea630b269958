"""Which daemon a client command talks to, and with which token, found without flags where
it can be: a command line flag or variable first, then what `temps login` stored, then the
local install's client file (its URL and home, whose admin token a root shell may read),
then the URL and token of the repository's `temps` remote.

    --url / TEMPS_URL, TEMPS_TOKEN       what the user says, always first
    ~/.config/temps/credentials.json     `temps login URL` (mode 0600)
    /etc/temps/client.toml               written by install.sh: url and home
    git remote `temps`                   http://temps:TOKEN@host:port/app.git
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from receiver.cli import credentials, remote

CLIENT_FILE = Path("/etc/temps/client.toml")
DEFAULT_URL = "http://127.0.0.1:7000"
DEFAULT_HOME = Path("/var/lib/temps")


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    ca_file: str | None = None


@dataclass(frozen=True)
class Local:
    """The local install as its client file describes it."""

    url: str
    home: Path


def local_install() -> Local:
    path = Path(os.environ.get("TEMPS_CLIENT_FILE", CLIENT_FILE))
    try:
        described = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        described = {}
    return Local(
        url=str(described.get("url", DEFAULT_URL)),
        home=Path(str(described.get("home", DEFAULT_HOME))),
    )


def resolve(url: str | None, home: str | None) -> Target:
    """The daemon and token for a command; exits naming what to do when no token is found."""
    token = os.environ.get("TEMPS_TOKEN")
    url = url or os.environ.get("TEMPS_URL")
    stored = credentials.load()
    if url is None and stored is not None:
        return Target(stored.url, token or stored.token, stored.ca_file)
    if url is not None and stored is not None and same_daemon(url, stored.url) and not token:
        return Target(url, stored.token, stored.ca_file)
    local = local_install()
    if url is None and token is None and home is None and not _readable(local.home / "admin-token"):
        pushed = remote.daemon()
        if pushed is not None:
            return Target(*pushed)
    url = url or local.url
    if token:
        return Target(url, token)
    homes = [Path(home)] if home else _homes(local)
    for candidate in homes:
        path = candidate.expanduser() / "admin-token"
        if _readable(path):
            return Target(url, path.read_text().strip())
    where = " or ".join(str(candidate / "admin-token") for candidate in homes)
    sys.exit(
        f"temps: no token for {url}: run `temps login {url}`, set TEMPS_TOKEN, "
        f"or run as a user who may read {where}"
    )


def _homes(local: Local) -> list[Path]:
    named = os.environ.get("TEMPS_HOME")
    if named:
        return [Path(named)]
    return [local.home, Path.home() / ".temps"]


def _readable(path: Path) -> bool:
    try:
        return bool(path.read_text().strip())
    except OSError:
        return False


def same_daemon(one: str, other: str) -> bool:
    a, b = urlsplit(one), urlsplit(other)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())
