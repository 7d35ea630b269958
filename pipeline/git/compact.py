"""Merging a repository's packs into one, so that a day of pushes leaves a few files.

Every push stores its objects as a pack of their own, and every read of the repository
(a push's checks, the build context, an advertisement) opens each pack it needs: with
hundreds of pushes a single push held hundreds of files open, and the daemon's memory grew
with the pack indexes. Once a repository holds `MERGE_AT` packs they are merged into one,
after the push or fetch that made the last one.

C git does the merge when it is on PATH (`git repack`, which streams); otherwise dulwich's
repack, which holds every object in memory, so it runs only for packs up to
`DULWICH_MAX_BYTES` in all. Unreachable objects are kept (a release may name a commit a
force push left behind), so a merge never loses an object.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import structlog
from dulwich.repo import Repo

from pipeline.git import locks

log = structlog.get_logger()

MERGE_AT = 10
DULWICH_MAX_BYTES = 64 * 1024 * 1024
GIT_TIMEOUT = 600.0


def packs(path: Path) -> list[Path]:
    return sorted((path / "objects" / "pack").glob("*.pack"))


def merge_if_many(path: Path, merge_at: int = MERGE_AT) -> bool:
    """Merge the repository's packs when there are `merge_at` or more and nobody is reading
    it; whether it did. Never raises: a merge not made is made after a later push."""
    if len(packs(path)) < merge_at:
        return False
    try:
        with locks.exclusive_if_free(path) as alone:
            if not alone:
                log.info("git.merge_deferred", repo=path.name, reason="repository in use")
                return False
            before = len(packs(path))
            _merge(path)
    except Exception as exc:
        log.warning("git.merge_failed", repo=path.name, error=str(exc)[:300])
        return False
    log.info("git.packs_merged", repo=path.name, packs=before, now=len(packs(path)))
    return True


def _merge(path: Path) -> None:
    git = shutil.which("git")
    if git is not None:
        done = subprocess.run(
            [
                git,
                "-c",
                "safe.directory=*",
                "-c",
                "pack.threads=1",  # leave the other cores to the apps
                "-c",
                "repack.writeBitmaps=false",
                "repack",
                "-a",
                "-d",
                "-q",
                "--keep-unreachable",
            ],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"git repack exited {done.returncode}: {done.stderr.strip()}")
        return
    size = sum(pack.stat().st_size for pack in packs(path))
    if size > DULWICH_MAX_BYTES:
        raise RuntimeError(f"{size} bytes of packs: install git to merge them")
    repo = Repo(str(path))
    try:
        repo.object_store.repack()
    finally:
        repo.close()
