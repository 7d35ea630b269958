"""What the current repository's `temps` remote says: the app it deploys (the last part of
its path, `myapp.git`), and the daemon and token when the URL carries them, as `git remote
add temps http://temps:TOKEN@host:7000/myapp.git` (the install's own advice) does."""

from __future__ import annotations

import functools
import os
from urllib.parse import unquote, urlsplit, urlunsplit

REMOTE = "temps"


def url() -> str | None:
    return _configured(os.getcwd(), os.environ.get("TEMPS_REMOTE", REMOTE))


@functools.cache
def _configured(cwd: str, name: str) -> str | None:
    """Asked of git once per command: the daemon and the app both come from it (and
    subprocess imported only then: most runs name their app and daemon, and never ask)."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        return None
    try:
        found = subprocess.run(
            [git, "config", "--get", f"remote.{name}.url"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def app() -> str | None:
    found = url()
    if found is None:
        return None
    name = urlsplit(found).path.rstrip("/").rsplit("/", 1)[-1]
    name = name.removesuffix(".git")
    return name or None


def daemon() -> tuple[str, str] | None:
    """(base URL, token) from an http(s) remote that carries a token."""
    found = url()
    if found is None:
        return None
    parts = urlsplit(found)
    if parts.scheme not in ("http", "https") or not parts.password or not parts.hostname:
        return None
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname:  # an IPv6 literal keeps its brackets
        host = f"[{parts.hostname}]" + ("" if parts.port is None else f":{parts.port}")
    base = urlunsplit((parts.scheme, host, "", "", ""))
    return base, unquote(parts.password)
