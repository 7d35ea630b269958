"""What a stack's rules make of a commit: the Dockerfile, and why that stack."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.app.config import BuildSettings
from pipeline.errors import BuildFailed


@dataclass(frozen=True)
class Facts:
    """What a generated Dockerfile depends on besides the commit's files."""

    app: str
    port: int  # temps.toml's `port`: $PORT in the image
    web: str | None  # the Procfile's `web:` command, which the image runs when given
    build: BuildSettings  # temps.toml's [build]
    base_images: Mapping[str, str]  # the daemon's --base-images, by role


@dataclass(frozen=True)
class Plan:
    stack: str  # "python"
    name: str  # "Python app", for the pusher
    reason: str  # the files that made the choice: "requirements.txt"
    dockerfile: str

    @property
    def detected(self) -> str:
        return f"{self.name} detected ({self.reason})"


def local_paths(candidates: Iterable[str], manifest: str) -> list[str]:
    """The paths inside the repository a manifest names for its dependencies (a wheel, a
    tarball, a module), normalised, in order, once each: they are copied beside the manifest
    so the dependencies install before the code is copied. A path that leaves the
    repository, or that a COPY line could not hold as it is, is refused; `.` (the app
    itself) is kept as it is: the stack copies the whole repository for it."""
    found: list[str] = []
    for raw in candidates:
        path = posixpath.normpath(raw.removeprefix("file:"))
        if path.startswith("/") or path == ".." or path.startswith("../"):
            raise BuildFailed(f"{manifest} names {raw!r}, outside the repository")
        if not _PLAIN_PATH.fullmatch(path):
            raise BuildFailed(f"{manifest} names the path {raw!r}: use letters, digits and ._-/@+")
        if path not in found:
            found.append(path)
    return found


_PLAIN_PATH = re.compile(r"[A-Za-z0-9._/@+-]{1,255}")
