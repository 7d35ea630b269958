"""Python: requirements.txt, or pyproject.toml installed by pip, uv (uv.lock) or Poetry
(poetry.lock), into a virtual environment made in a build stage and copied to the final one.

The project itself is not installed: the app runs from its working directory, /app, as on
Heroku. Its command is the Procfile's `web:`, else `python main.py` or `python app.py`.
"""

from __future__ import annotations

import posixpath
import shlex
import tomllib
from collections.abc import Iterator

from pipeline.builders.images import images_for
from pipeline.builders.plan import Facts, Plan, local_paths
from pipeline.builders.render import render, shell_command
from pipeline.builders.source import Source, has_file, text_of
from pipeline.errors import BuildFailed

LOOKS_FOR = "requirements.txt or pyproject.toml (Python)"
ENTRY_FILES = ("main.py", "app.py")
# Options of a requirements file that name another file or a folder of packages.
_PATH_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-f", "--find-links",
                 "-e", "--editable"}  # fmt: skip
_NESTED = {"-r", "--requirement", "-c", "--constraint"}
MAX_NESTED = 20


def detect(source: Source, facts: Facts) -> Plan | None:
    if has_file(source, "requirements.txt"):
        tool, reason, manifests = "pip", "requirements.txt", ["requirements.txt"]
        paths = list(_requirements_paths(source, "requirements.txt", set()))
    elif has_file(source, "pyproject.toml"):
        tool, reason, manifests, paths = _pyproject(source)
    else:
        return None
    local = local_paths(paths, reason)
    images = images_for("python", facts.build, facts.base_images, helpers=("uv",))
    dockerfile = render(
        "python.Dockerfile.j2",
        reason=reason,
        app=facts.app,
        port=facts.port,
        images=images,
        tool=tool,
        manifests=[m for m in manifests if m not in local],
        local=[p for p in local if p != "."],
        whole="." in local,
        command=shell_command(_command(source, facts)),
    )
    return Plan("python", "Python app", reason, dockerfile)


def _pyproject(source: Source) -> tuple[str, str, list[str], list[str]]:
    try:
        project = tomllib.loads(text_of(source, "pyproject.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise BuildFailed(f"pyproject.toml: {exc}") from exc
    tool_table = project.get("tool", {})
    if has_file(source, "uv.lock"):
        sources = tool_table.get("uv", {}).get("sources", {})
        return "uv", "pyproject.toml, uv.lock", ["pyproject.toml", "uv.lock"], _paths_in(sources)
    if has_file(source, "poetry.lock"):
        poetry = tool_table.get("poetry", {})
        paths = _paths_in(poetry.get("dependencies", {}))
        reason = "pyproject.toml, poetry.lock"
        return "poetry", reason, ["pyproject.toml", "poetry.lock"], paths
    return "pip", "pyproject.toml", ["pyproject.toml"], []


def _paths_in(table: object) -> list[str]:
    """`path = "..."` of each dependency in a [tool.uv.sources] or Poetry table."""
    if not isinstance(table, dict):
        return []
    specs = [spec for value in table.values() for spec in _as_list(value)]
    return [str(spec["path"]) for spec in specs if isinstance(spec, dict) and "path" in spec]


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _requirements_paths(source: Source, name: str, seen: set[str]) -> Iterator[str]:
    """The paths a requirements file names (itself among them for a nested one): nested
    files, local packages, folders of packages to find them in."""
    if name in seen or len(seen) >= MAX_NESTED:
        return
    seen.add(name)
    folder = posixpath.dirname(name)
    if folder:
        yield name
    for option, value in _entries(text_of(source, name)):
        if option in _PATH_OPTIONS and "://" not in value:
            path = posixpath.normpath(posixpath.join(folder, value.removeprefix("file:")))
            if option in _NESTED:
                yield from _requirements_paths(source, path, seen)
            else:
                yield path
        elif option == "" and _is_local(value):
            yield posixpath.normpath(posixpath.join(folder, value.removeprefix("file:")))


def _entries(text: str) -> Iterator[tuple[str, str]]:
    """(option, value) per line of a requirements file; option "" for a requirement."""
    for line in text.replace("\\\n", " ").splitlines():
        words = line.split(" #")[0].strip().split()
        if not words or words[0].startswith("#"):
            continue
        first = words[0]
        if first.startswith("-"):
            option, sep, value = first.partition("=")
            if not sep and len(words) > 1:
                value = words[1]
            yield option, value
        else:
            yield "", first


def _is_local(requirement: str) -> bool:
    """A requirement that is a path: `./wheels/x.whl`, `file:pkg`, `x-1.0.tar.gz`."""
    if "://" in requirement:
        return False
    return requirement.startswith((".", "file:")) or requirement.endswith(
        (".whl", ".tar.gz", ".zip")
    )


def _command(source: Source, facts: Facts) -> str:
    if facts.web:
        return facts.web
    for name in ENTRY_FILES:
        if has_file(source, name):
            return f"python {shlex.quote(name)}"
    raise BuildFailed(
        "Python app detected, but nothing says how to start it: add a Procfile with a "
        "'web: <command>' line (or a main.py or app.py)"
    )
