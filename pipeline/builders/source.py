"""What detection reads of a commit: the names in a folder, and a file's bytes.

A protocol, so that the stacks' rules are checked on a commit of a bare repository in the
daemon and on a plain dict in unit tests alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.errors import BuildFailed
from pipeline.git import repo as gitrepo

FILE, FOLDER = "file", "folder"


class Source(Protocol):
    def names(self, folder: str = "") -> Mapping[str, str]:
        """Name -> "file", "folder" or "link", of a folder's entries (the root by default)."""
        ...

    def read(self, path: str) -> bytes | None:
        """A file's bytes by its path from the root; None when it is not a file there."""
        ...


@dataclass
class CommitSource:
    """A commit of a bare repository; the root's listing is read once."""

    repo: Path
    commit: str
    _root: Mapping[str, str] | None = None

    def names(self, folder: str = "") -> Mapping[str, str]:
        if folder:
            return gitrepo.list_folder(self.repo, self.commit, folder)
        if self._root is None:
            self._root = gitrepo.list_folder(self.repo, self.commit)
        return self._root

    def read(self, path: str) -> bytes | None:
        return gitrepo.read_file(self.repo, self.commit, path)


def has_file(source: Source, name: str) -> bool:
    return source.names().get(name) == FILE


def has_folder(source: Source, name: str) -> bool:
    return source.names().get(name) == FOLDER


def text_of(source: Source, path: str) -> str:
    """A manifest's text; unreadable bytes are a build failure worth naming."""
    data = source.read(path)
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BuildFailed(f"{path} is not UTF-8 text") from exc
