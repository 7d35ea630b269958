"""Bare repositories and commit trees, through dulwich (imported only in pipeline/git/)."""

from __future__ import annotations

import io
import posixpath
import re
import shutil
import stat
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

from dulwich.errors import NotGitRepository
from dulwich.graph import can_fast_forward
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo
from typing_extensions import Buffer

from pipeline.errors import BuildFailed, InvalidInput, NotFound
from pipeline.git import locks

MAIN_REF = Ref(b"refs/heads/main")
ALTERNATES = locks.ALTERNATES
GITLINK = 0o160000


def init_bare(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    repo = Repo.init_bare(str(path), mkdir=True)
    try:
        repo.refs.set_symbolic_ref(Ref(b"HEAD"), MAIN_REF)
    finally:
        repo.close()


def init_borrowing(path: Path, parent: Path) -> None:
    """A bare repository that reads its objects from `parent`'s (git's alternates): a
    preview's, whose commits are pushed to its app's repository as a branch. Nothing is
    copied; the parent keeps every object its merges find (`compact`), reachable or not."""
    init_bare(path)
    info = path / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / ALTERNATES).write_text(f"{(parent / 'objects').resolve()}\n")


def remove_bare(path: Path) -> bool:
    """Remove a repository for good, once the reads and pushes holding it have ended; False
    when there was none. A removal cut short (its objects gone already) is finished."""
    if not path.exists():
        return False
    try:
        with locks.exclusive(path):
            shutil.rmtree(path)
    except NotFound:
        shutil.rmtree(path)
    return True


def open_repo(path: Path) -> Repo:
    try:
        return Repo(str(path))
    except NotGitRepository as exc:
        raise NotFound(f"no repository at {path}") from exc


@contextmanager
def opened(path: Path) -> Iterator[Repo]:
    """The repository, held shared so its packs are not merged under it, and closed after:
    dulwich keeps every pack it opened open until then."""
    with locks.shared(path):
        repo = open_repo(path)
        try:
            yield repo
        finally:
            repo.close()


def head_commit(path: Path) -> str | None:
    with opened(path) as repo:
        refs = repo.get_refs()
        sha = refs.get(MAIN_REF)
        return sha.decode() if sha else None


def resolve_commit(path: Path, commit: str) -> str:
    """The full SHA of a commit in the repository, from its full or abbreviated SHA."""
    if not re.fullmatch(r"[0-9a-f]{4,40}", commit):
        raise InvalidInput(f"not a commit SHA: {commit!r}")
    with opened(path) as repo:
        if len(commit) == 40:
            _commit_tree(repo, commit)
            return commit
        matches = {sha.decode() for sha in repo.object_store if sha.decode().startswith(commit)}
        commits = [sha for sha in matches if isinstance(repo[ObjectID(sha.encode())], Commit)]
    if len(commits) != 1:
        raise NotFound(f"commit {commit} is {'ambiguous' if commits else 'not in the repository'}")
    return commits[0]


def set_main(path: Path, commit: str) -> None:
    with opened(path) as repo:
        repo.refs[MAIN_REF] = ObjectID(commit.encode())


def is_fast_forward(path: Path, old: str, new: str) -> bool:
    """Whether `new` descends from `old`; a push that is not rewrote history (a force push)."""
    with opened(path) as repo:
        try:
            return can_fast_forward(repo, ObjectID(old.encode()), ObjectID(new.encode()))
        except KeyError:
            return False


def read_file(path: Path, commit: str, name: str) -> bytes | None:
    """The blob at `name` (a path, `a/b.txt`, from the root) in the commit, or None when absent."""
    with opened(path) as repo:
        tree = _commit_tree(repo, commit)
        *folders, last = name.split("/")
        try:
            for part in folders:
                _, sha = tree[part.encode()]
                inner = repo[sha]
                if not isinstance(inner, Tree):
                    return None
                tree = inner
            mode, sha = tree[last.encode()]
        except KeyError:
            return None
        # Check the mode first: a submodule's sha names a commit of another repository.
        if not stat.S_ISREG(mode):
            return None
        obj = repo[sha]
        return obj.data if isinstance(obj, Blob) else None


def list_folder(path: Path, commit: str, folder: str = "") -> dict[str, str]:
    """The entries of a folder of the commit's tree (its root by default), by name: "file",
    "folder" or "link" (submodules left out); empty when the folder is not there."""
    with opened(path) as repo:
        tree: Tree | None = _commit_tree(repo, commit)
        for part in [p for p in folder.split("/") if p]:
            assert tree is not None
            try:
                mode, sha = tree[part.encode()]
            except KeyError:
                return {}
            found = repo[sha] if stat.S_ISDIR(mode) else None
            tree = found if isinstance(found, Tree) else None
            if tree is None:
                return {}
        assert tree is not None
        kinds = {}
        for entry in tree.iteritems():
            if stat.S_ISDIR(entry.mode):
                kind = "folder"
            elif stat.S_ISLNK(entry.mode):
                kind = "link"
            elif stat.S_ISREG(entry.mode):
                kind = "file"
            else:
                continue
            kinds[entry.path.decode("utf-8", "surrogateescape")] = kind
        return kinds


def stream_tar(
    path: Path, commit: str, extra: Mapping[str, bytes] | None = None
) -> Iterator[bytes]:
    """The commit's tree as an uncompressed tar (symlinks kept, submodules skipped), made
    piece by piece as the build reads it: the context is never written out whole, on disk or
    in memory; at most one file of the tree is held at a time. `extra` files (name -> bytes)
    are added at the root after the tree: a Dockerfile temps made for the commit."""
    with opened(path) as repo:
        tree = _commit_tree(repo, commit)
        sink = _Pieces()
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for _ in _add_tree(repo, tree, "", tar):
                yield from sink.take()
            for name, data in (extra or {}).items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, BytesIO(data))
        yield from sink.take()  # the end-of-archive blocks


class _Pieces(io.RawIOBase):
    """A write-only file for tarfile's stream mode; what it was given is taken in pieces."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> list[bytes]:
        """What was written since the last take, in the pieces tarfile wrote (never joined:
        a large file would be held twice)."""
        pieces, self._parts = self._parts, []
        return pieces


def _commit_tree(repo: Repo, commit: str) -> Tree:
    try:
        obj = repo[ObjectID(commit.encode())]
    except KeyError as exc:
        raise NotFound(f"commit {commit[:12]} is not in the repository") from exc
    if not isinstance(obj, Commit):
        raise NotFound(f"{commit[:12]} is not a commit")
    tree = repo[obj.tree]
    assert isinstance(tree, Tree)
    return tree


def _inside_tree(link: str, target: str) -> str:
    """A symlink's target, refused when it points outside the commit's tree."""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if len(target) > 1024 or target.startswith("/") or resolved.split("/")[0] == "..":
        raise BuildFailed(f"refusing symlink {link} -> {target[:80]}: it leaves the tree")
    return target


def _add_tree(repo: Repo, tree: Tree, prefix: str, tar: tarfile.TarFile) -> Iterator[None]:
    """Add the tree's entries to `tar`, yielding after each one."""
    for entry in tree.iteritems():
        name = entry.path.decode("utf-8", "surrogateescape")
        if name in ("", ".", "..") or "/" in name or "\x00" in name:
            raise BuildFailed(f"refusing a path that leaves the tree: {prefix}{name!r}")
        full = prefix + name
        mode = entry.mode
        if mode == GITLINK:
            continue
        obj = repo[entry.sha]
        info = tarfile.TarInfo(full)
        info.mtime = 0
        if stat.S_ISDIR(mode):
            assert isinstance(obj, Tree)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
            yield
            yield from _add_tree(repo, obj, full + "/", tar)
        elif stat.S_ISLNK(mode):
            assert isinstance(obj, Blob)
            info.type = tarfile.SYMTYPE
            info.linkname = _inside_tree(full, obj.data.decode("utf-8", "surrogateescape"))
            info.mode = 0o777
            tar.addfile(info)
            yield
        else:
            assert isinstance(obj, Blob)
            info.size = len(obj.data)
            info.mode = 0o755 if mode & 0o111 else 0o644
            tar.addfile(info, BytesIO(obj.data))
            yield
