"""The base image of each stage of a generated Dockerfile.

Each stack names its images by role: `python`, `node`, `go` and `static` build (and, but for
Go, run) the app; `go-runtime` runs Go's binaries; `uv` brings uv's binary to a uv project.
An image comes from the first of: the app's `[build]` in temps.toml (`image`, and
`runtime_image` for the final stage), the daemon's `--base-images role=image,...` (a
registry mirror, a company's own images), and the defaults here: the official images, on
Debian but for Caddy's, which is Alpine's only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.app.config import BuildSettings

DEFAULTS: dict[str, str] = {
    "python": "python:3.12-slim-bookworm",
    "node": "node:22-bookworm-slim",
    "go": "golang:1.23-bookworm",
    "go-runtime": "debian:bookworm-slim",
    "static": "caddy:2-alpine",
    "uv": "ghcr.io/astral-sh/uv:latest",
}
ROLES = tuple(DEFAULTS)


@dataclass(frozen=True)
class Images:
    """A stack's images: `build` for the stage that installs and builds, `runtime` for the
    final one, and any helper image a stage copies a tool from (by role)."""

    build: str
    runtime: str
    helpers: Mapping[str, str]


def images_for(
    stack: str,
    app: BuildSettings,
    daemon: Mapping[str, str],
    runtime_role: str | None = None,
    helpers: tuple[str, ...] = (),
) -> Images:
    """The images of `stack`; its final stage runs on `runtime_role`'s image when it has one
    of its own (Go), on the build image otherwise."""

    def chosen(role: str) -> str:
        return daemon.get(role) or DEFAULTS[role]

    build = app.image or chosen(stack)
    runtime = app.runtime_image or (chosen(runtime_role) if runtime_role else build)
    return Images(build, runtime, {role: chosen(role) for role in helpers})
