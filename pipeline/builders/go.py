"""Go: go.mod. The modules are downloaded first (unless the repository vendors them), then
every main package of the module is built into bin/, and only the binaries go on to the
final image: no compiler, no source.

The binaries are named as `go build` names them (a package's last path element; the root
package's is the module's), in /app/bin, on the PATH, so a Heroku-style Procfile line
(`web: bin/hello`) runs as it is. Without a Procfile, the image runs the root package's
binary, or the one package under cmd/.
"""

from __future__ import annotations

import posixpath
import re

from pipeline.builders.images import images_for
from pipeline.builders.plan import Facts, Plan, local_paths
from pipeline.builders.render import render, shell_command
from pipeline.builders.source import FOLDER, Source, has_file, has_folder, text_of
from pipeline.errors import BuildFailed

LOOKS_FOR = "go.mod (Go)"
_MODULE = re.compile(r"^module\s+\"?([^\s\"]+)\"?", re.MULTILINE)
# `replace example.com/x => ./x` (one line, or a line of a `replace (...)` block).
_LOCAL_REPLACE = re.compile(r"=>\s*(\.{1,2}/[^\s]*)")


def detect(source: Source, facts: Facts) -> Plan | None:
    if not has_file(source, "go.mod"):
        return None
    go_mod = text_of(source, "go.mod")
    module = _MODULE.search(go_mod)
    if module is None:
        raise BuildFailed("go.mod has no module line")
    manifests = ["go.mod", *(["go.sum"] if has_file(source, "go.sum") else [])]
    dockerfile = render(
        "go.Dockerfile.j2",
        reason="go.mod",
        app=facts.app,
        port=facts.port,
        images=images_for("go", facts.build, facts.base_images, runtime_role="go-runtime"),
        manifests=manifests,
        local=local_paths(_LOCAL_REPLACE.findall(go_mod), "go.mod"),
        vendored=has_folder(source, "vendor"),
        command=shell_command(facts.web or _binary(source, module.group(1))),
    )
    return Plan("go", "Go app", "go.mod", dockerfile)


def _binary(source: Source, module: str) -> str:
    if any(name.endswith(".go") for name in source.names()):
        return posixpath.basename(module.rstrip("/"))
    commands = [name for name, kind in source.names("cmd").items() if kind == FOLDER]
    if len(commands) == 1:
        return commands[0]
    raise BuildFailed(
        "Go app detected, but which program serves the web is not clear: add a Procfile "
        "with a 'web: bin/<program>' line (programs are built into bin/, named as their "
        "package folder)"
    )
