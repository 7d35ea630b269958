"""A commit's files as a dict, for the builders' unit tests: the seam detection reads."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.app.config import AppConfig, BuildSettings
from pipeline.builders.detect import facts_of
from pipeline.builders.plan import Facts


@dataclass(frozen=True)
class Files:
    """Path -> text; a folder is there when a file is under it."""

    files: Mapping[str, str]

    def names(self, folder: str = "") -> Mapping[str, str]:
        prefix = f"{folder.strip('/')}/" if folder else ""
        found: dict[str, str] = {}
        for path in self.files:
            if not path.startswith(prefix):
                continue
            first, sep, _ = path[len(prefix) :].partition("/")
            found[first] = "folder" if sep else "file"
        return found

    def read(self, path: str) -> bytes | None:
        text = self.files.get(posixpath.normpath(path))
        return None if text is None else text.encode()


def facts(
    app: str = "myapp",
    web: str | None = None,
    base_images: Mapping[str, str] | None = None,
    build: BuildSettings | None = None,
    port: int = 8000,
) -> Facts:
    config = AppConfig(port=port, build=build or BuildSettings())
    if web:
        config = AppConfig(port=port, build=config.build, processes={"web": web})
    return facts_of(app, config, (base_images or {}).items())
