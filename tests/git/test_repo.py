"""Bare repositories and commit trees: made with the git CLI, read back through dulwich."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from pipeline.errors import BuildFailed, NotFound
from pipeline.git.repo import head_commit, init_bare, open_repo, read_file, stream_tar

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
SUBMODULE_SHA = "0123456789abcdef0123456789abcdef01234567"


def export_tar(bare: Path, commit: str) -> io.BytesIO:
    """The build context as the builder receives it: every piece of the stream, in order."""
    return io.BytesIO(b"".join(stream_tar(bare, commit)))


def git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "repos" / "app.git"
    init_bare(path)
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "Dockerfile").write_text("FROM scratch\n")
    (path / "nested" / "deep").mkdir(parents=True)
    (path / "nested" / "deep" / "data.txt").write_text("deep contents\n")
    run = path / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    (path / "link").symlink_to("nested/deep/data.txt")
    git(path, "add", ".")
    git(path, "update-index", "--add", "--cacheinfo", f"160000,{SUBMODULE_SHA},sub")
    git(path, "commit", "-q", "-m", "first")
    return path


@pytest.fixture
def pushed(work: Path, bare: Path) -> str:
    git(work, "push", "-q", str(bare), "main")
    return git(work, "rev-parse", "HEAD")


def members(tar_bytes: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    return {info.name: info for info in tar_bytes.getmembers()}


def test_init_bare_points_head_at_main(bare: Path, tmp_path: Path) -> None:
    assert (bare / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert git(tmp_path, "--git-dir", str(bare), "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(tmp_path, "--git-dir", str(bare), "rev-parse", "--is-bare-repository") == "true"


def test_a_new_repository_has_no_head_commit(bare: Path) -> None:
    assert head_commit(bare) is None


def test_head_commit_is_the_pushed_main(bare: Path, pushed: str, work: Path) -> None:
    assert head_commit(bare) == pushed
    (work / "Dockerfile").write_text('FROM scratch\nCMD ["x"]\n')
    git(work, "commit", "-q", "-am", "second")
    git(work, "push", "-q", str(bare), "main")
    second = git(work, "rev-parse", "HEAD")
    assert second != pushed
    assert head_commit(bare) == second


def test_a_branch_other_than_main_is_not_the_head(bare: Path, work: Path) -> None:
    git(work, "push", "-q", str(bare), "main:feature")
    assert head_commit(bare) is None


def test_export_holds_every_file_with_its_contents(bare: Path, pushed: str) -> None:
    with tarfile.open(fileobj=export_tar(bare, pushed)) as tar:
        found = members(tar)
        assert set(found) == {
            "Dockerfile",
            "link",
            "nested",
            "nested/deep",
            "nested/deep/data.txt",
            "run.sh",
        }
        extracted = {
            name: tar.extractfile(info).read()  # type: ignore[union-attr]
            for name, info in found.items()
            if info.isfile()
        }
    assert extracted == {
        "Dockerfile": b"FROM scratch\n",
        "nested/deep/data.txt": b"deep contents\n",
        "run.sh": b"#!/bin/sh\necho hi\n",
    }


def test_export_keeps_the_executable_bit(bare: Path, pushed: str) -> None:
    with tarfile.open(fileobj=export_tar(bare, pushed)) as tar:
        found = members(tar)
    assert found["run.sh"].mode == 0o755
    assert found["Dockerfile"].mode == 0o644
    assert found["nested/deep/data.txt"].mode == 0o644
    assert found["nested"].isdir()
    assert found["nested/deep"].isdir()


def test_export_keeps_symlinks_as_symlinks(bare: Path, pushed: str) -> None:
    with tarfile.open(fileobj=export_tar(bare, pushed)) as tar:
        link = members(tar)["link"]
    assert link.issym()
    assert link.linkname == "nested/deep/data.txt"
    assert link.size == 0


def test_export_skips_submodules(bare: Path, pushed: str, tmp_path: Path) -> None:
    # The gitlink is in the commit...
    tree = git(tmp_path, "--git-dir", str(bare), "ls-tree", pushed)
    assert f"160000 commit {SUBMODULE_SHA}\tsub" in tree.splitlines()
    # ...and nowhere in the tar.
    with tarfile.open(fileobj=export_tar(bare, pushed)) as tar:
        names = tar.getnames()
    assert not [name for name in names if name == "sub" or name.startswith("sub/")]


def test_the_exported_tree_unpacks_to_the_work_tree(
    bare: Path, pushed: str, tmp_path: Path
) -> None:
    target = tmp_path / "unpacked"
    with tarfile.open(fileobj=export_tar(bare, pushed)) as tar:
        tar.extractall(target, filter="tar")
    assert (target / "nested" / "deep" / "data.txt").read_text() == "deep contents\n"
    assert os.readlink(target / "link") == "nested/deep/data.txt"
    assert (target / "link").read_text() == "deep contents\n"
    assert stat.S_IMODE((target / "run.sh").stat().st_mode) & 0o111


def test_export_of_an_unknown_commit_is_not_found(bare: Path, pushed: str) -> None:
    with pytest.raises(NotFound, match="is not in the repository"):
        export_tar(bare, "f" * 40)


def test_export_of_a_tree_that_is_not_a_commit_is_not_found(
    bare: Path, pushed: str, tmp_path: Path
) -> None:
    tree = git(tmp_path, "--git-dir", str(bare), "rev-parse", f"{pushed}^{{tree}}")
    with pytest.raises(NotFound, match="is not a commit"):
        export_tar(bare, tree)


def test_a_tree_entry_that_leaves_the_tree_is_refused(bare: Path, tmp_path: Path) -> None:
    git_dir = ("--git-dir", str(bare))
    blob = git(tmp_path, *git_dir, "hash-object", "-w", "--stdin", stdin="escape\n")
    tree = git(tmp_path, *git_dir, "mktree", stdin=f"100644 blob {blob}\t..\n")
    commit = git(tmp_path, *git_dir, "commit-tree", tree, "-m", "evil")
    with pytest.raises(BuildFailed, match="leaves the tree"):
        export_tar(bare, commit)


def test_read_file_returns_a_blob_at_the_root(bare: Path, pushed: str) -> None:
    assert read_file(bare, pushed, "Dockerfile") == b"FROM scratch\n"
    assert read_file(bare, pushed, "run.sh") == b"#!/bin/sh\necho hi\n"


@pytest.mark.parametrize("name", ["temps.toml", "nested", "link", "missing/file"])
def test_read_file_returns_none_for_what_is_not_a_root_file(
    bare: Path, pushed: str, name: str
) -> None:
    assert read_file(bare, pushed, name) is None


def test_read_file_returns_none_for_a_submodule(bare: Path, pushed: str) -> None:
    assert read_file(bare, pushed, "sub") is None


def test_read_file_sees_the_named_commit_not_the_tip(bare: Path, pushed: str, work: Path) -> None:
    (work / "temps.toml").write_text("port = 5000\n")
    git(work, "add", "temps.toml")
    git(work, "commit", "-q", "-m", "config")
    git(work, "push", "-q", str(bare), "main")
    tip = git(work, "rev-parse", "HEAD")
    assert read_file(bare, tip, "temps.toml") == b"port = 5000\n"
    assert read_file(bare, pushed, "temps.toml") is None


def test_a_path_that_is_no_repository_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no repository"):
        open_repo(tmp_path)
    with pytest.raises(NotFound):
        head_commit(tmp_path / "absent.git")
