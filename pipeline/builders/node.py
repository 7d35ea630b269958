"""Node: package.json, installed by npm (package-lock.json or none), Yarn (yarn.lock) or
pnpm (pnpm-lock.yaml) in a build stage that also runs the `build` script and then drops the
development dependencies; the final stage gets the app and its production dependencies.

The app starts with its `start` script, run by the shell with `node_modules/.bin` on the
PATH as npm would, but with no npm process between the app and its signals; without one,
`node <main>` (package.json's `main`, else server.js as npm's own default). The Procfile's
`web:` comes first.
"""

from __future__ import annotations

import json
import shlex

from pipeline.builders.images import images_for
from pipeline.builders.plan import Facts, Plan, local_paths
from pipeline.builders.render import render, shell_command
from pipeline.builders.source import Source, has_file, has_folder, text_of
from pipeline.errors import BuildFailed

LOOKS_FOR = "package.json (Node)"
# Lock file -> (tool, its install, its prune of the development dependencies).
TOOLS = {
    "package-lock.json": ("npm", "npm ci", "npm prune --omit=dev"),
    "pnpm-lock.yaml": ("pnpm", "pnpm install --frozen-lockfile", "pnpm prune --prod"),
    "yarn.lock": (
        "yarn",
        "yarn install --frozen-lockfile",
        "yarn install --frozen-lockfile --production --ignore-scripts --prefer-offline",
    ),
}
BERRY = ("yarn", "yarn install --immutable", None)  # Yarn 2+: no prune of its own
NO_LOCK = ("npm", "npm install", "npm prune --omit=dev")
# Settings of the package managers that the install reads, copied with the manifests.
CONFIG_FILES = (".npmrc", ".yarnrc", ".yarnrc.yml", "pnpm-workspace.yaml")
CONFIG_FOLDERS = (".yarn",)
DEPENDENCY_TABLES = ("dependencies", "devDependencies", "optionalDependencies")


def detect(source: Source, facts: Facts) -> Plan | None:
    if not has_file(source, "package.json"):
        return None
    package = _package(source)
    lock = next((name for name in TOOLS if has_file(source, name)), None)
    tool, install, prune = _tool(source, lock)
    scripts = package.get("scripts") if isinstance(package.get("scripts"), dict) else {}
    assert isinstance(scripts, dict)
    manifests = ["package.json", *([lock] if lock else [])]
    manifests += [name for name in CONFIG_FILES if has_file(source, name)]
    local = [name for name in CONFIG_FOLDERS if has_folder(source, name)]
    local += local_paths(_file_dependencies(package), "package.json")
    dockerfile = render(
        "node.Dockerfile.j2",
        reason=", ".join(manifests[:2]),
        app=facts.app,
        port=facts.port,
        images=images_for("node", facts.build, facts.base_images),
        corepack=tool != "npm",
        manifests=manifests,
        local=[path for path in local if path != "."],
        install=install,
        build="build" in scripts,
        run_build=f"{tool} run build",
        prune=prune,
        command=shell_command(_command(source, facts, package, scripts)),
    )
    return Plan("node", "Node app", ", ".join(manifests[:2]), dockerfile)


def _package(source: Source) -> dict[str, object]:
    try:
        package = json.loads(text_of(source, "package.json"))
    except json.JSONDecodeError as exc:
        raise BuildFailed(f"package.json: {exc}") from exc
    if not isinstance(package, dict):
        raise BuildFailed("package.json: expected an object")
    return package


def _tool(source: Source, lock: str | None) -> tuple[str, str, str | None]:
    if lock is None:
        return NO_LOCK
    if lock == "yarn.lock" and "__metadata:" in text_of(source, "yarn.lock"):
        return BERRY
    return TOOLS[lock]


def _file_dependencies(package: dict[str, object]) -> list[str]:
    """`"greet": "file:vendor/greet-1.0.0.tgz"`: local packages the install reads."""
    found = []
    for table in DEPENDENCY_TABLES:
        deps = package.get(table)
        if isinstance(deps, dict):
            found += [str(v) for v in deps.values() if str(v).startswith(("file:", "link:"))]
    return [spec.removeprefix("link:") for spec in found]


def _command(
    source: Source, facts: Facts, package: dict[str, object], scripts: dict[object, object]
) -> str:
    if facts.web:
        return facts.web
    start = scripts.get("start")
    if isinstance(start, str) and start.strip():
        return start.strip()
    main = package.get("main")
    entry = main if isinstance(main, str) and main else "server.js"
    if source.read(entry) is not None:
        return f"node {shlex.quote(entry)}"
    raise BuildFailed(
        "Node app detected, but nothing says how to start it: add a 'start' script to "
        "package.json (or a server.js, or a Procfile with a 'web: <command>' line)"
    )
