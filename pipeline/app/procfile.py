"""The Procfile at the root of the repository, in Heroku's format: `<process type>: <command>`
per line, `#` comments and blank lines ignored.

`web` is served through Traefik; any other type runs in the background; `release` is the
release phase, the same as `[deploy] release_command`.
"""

from __future__ import annotations

import dataclasses
import re

from pipeline.app.config import PROCESS_NAME, AppConfig
from pipeline.errors import InvalidInput

RELEASE = "release"
MAX_TYPES = 16
MAX_COMMAND = 4096
_LINE = re.compile(r"^([^:\s]+)\s*:\s*(.*)$")


def parse(text: str) -> dict[str, str]:
    """Process type -> command, in the file's order; the first thing wrong is an InvalidInput
    that names its line."""
    processes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"Procfile line {number}"
        found = _LINE.match(line)
        if found is None:
            raise InvalidInput(f"{where}: expected '<process type>: <command>', got {line!r}")
        name, command = found.group(1), found.group(2).strip()
        if not re.match(PROCESS_NAME, name):
            raise InvalidInput(
                f"{where}: a process type is lowercase letters, digits, '-' and '_' (at most "
                f"31, a letter first), got {name!r}"
            )
        if name in processes:
            raise InvalidInput(f"{where}: process type {name!r} is declared twice")
        if not command:
            raise InvalidInput(f"{where}: process type {name!r} has no command")
        if len(command) > MAX_COMMAND or "\x00" in command:
            raise InvalidInput(f"{where}: the command of {name!r} is too long or holds a NUL")
        processes[name] = command
    if len(processes) > MAX_TYPES:
        raise InvalidInput(f"Procfile: at most {MAX_TYPES} process types, got {len(processes)}")
    return processes


def applied(config: AppConfig, text: str | None) -> AppConfig:
    """The release's config with the Procfile's process types (`text`; None: no Procfile),
    its `release:` as the release command. Declared in two places, they are refused."""
    processes = dict(config.processes)
    if text is not None:
        if processes:
            raise InvalidInput(
                "process types are declared twice, in the Procfile and in temps.toml "
                "[processes]: keep one"
            )
        processes = parse(text)
    release = processes.pop(RELEASE, None)
    deploy = config.deploy
    if release is not None:
        if deploy.release_command:
            raise InvalidInput(
                f"the release phase is set twice: 'release: {release}' in the Procfile and "
                f"deploy.release_command = {deploy.release_command!r}: keep one"
            )
        deploy = dataclasses.replace(deploy, release_command=release)
    return dataclasses.replace(config, processes=processes, deploy=deploy)
