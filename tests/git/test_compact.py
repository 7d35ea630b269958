"""A repository's packs merged into one: every push through serve stores a pack of its own,
and the merge keeps every object, waits for no reader and is never made under one."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.git import compact
from pipeline.git.repo import (
    head_commit,
    init_borrowing,
    opened,
    read_file,
    resolve_commit,
    set_main,
)
from pipeline.git.serve import Progress
from tests.git.test_serve import accept, commit, push, pushed_once


def refuse(_ref: str, _old: str, _new: str, _progress: Progress) -> str | None:
    return "health check failed"


def pushes(bare: Path, work: Path, count: int) -> list[str]:
    """`count` commits after the first, each pushed through serve; all the commits."""
    commits = [pushed_once(bare, work)]
    for number in range(count):
        commits.append(commit(work, f"version {number}"))
        assert push(bare, work, commits[-2], commits[-1], accept).report[0] == "unpack ok"
    return commits


def assert_every_commit_readable(bare: Path, commits: list[str]) -> None:
    for number, sha in enumerate(commits):
        assert read_file(bare, sha, "app.txt") == (
            b"one" if number == 0 else f"version {number - 1}".encode()
        )


def test_a_dozen_pushes_leave_one_pack_with_every_commit(tmp_path: Path) -> None:
    bare = tmp_path / "app.git"
    commits = pushes(bare, tmp_path / "work", 11)
    assert len(compact.packs(bare)) == 12, "each push through serve stores a pack"

    assert compact.merge_if_many(bare, merge_at=10)

    assert len(compact.packs(bare)) == 1
    assert head_commit(bare) == commits[-1]
    assert_every_commit_readable(bare, commits)


def test_fewer_packs_than_the_bound_are_left_alone(tmp_path: Path) -> None:
    bare = tmp_path / "app.git"
    pushes(bare, tmp_path / "work", 3)
    assert not compact.merge_if_many(bare, merge_at=10)
    assert len(compact.packs(bare)) == 4


def test_the_objects_of_a_refused_push_are_kept(tmp_path: Path) -> None:
    bare, work = tmp_path / "app.git", tmp_path / "work"
    commits = pushes(bare, work, 2)
    refused = commit(work, "refused")
    assert push(bare, work, commits[-1], refused, refuse).report[0] == "unpack ok"
    assert head_commit(bare) == commits[-1]

    assert compact.merge_if_many(bare, merge_at=2)

    assert len(compact.packs(bare)) == 1
    assert read_file(bare, refused, "app.txt") == b"refused"


def test_no_merge_is_made_while_the_repository_is_read(tmp_path: Path) -> None:
    bare = tmp_path / "app.git"
    commits = pushes(bare, tmp_path / "work", 4)
    with opened(bare):
        assert not compact.merge_if_many(bare, merge_at=2), "merged under a reader"
        assert len(compact.packs(bare)) == 5
    assert compact.merge_if_many(bare, merge_at=2)
    assert_every_commit_readable(bare, commits)


def test_without_git_on_path_dulwich_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "app.git"
    commits = pushes(bare, tmp_path / "work", 4)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))

    assert compact.merge_if_many(bare, merge_at=2)

    assert len(compact.packs(bare)) == 1
    assert_every_commit_readable(bare, commits)


def test_a_folder_that_is_no_repository_is_left_untouched(tmp_path: Path) -> None:
    assert not compact.merge_if_many(tmp_path, merge_at=0)
    assert list(tmp_path.iterdir()) == []


def test_a_preview_reads_its_app_s_objects_before_and_after_a_merge(tmp_path: Path) -> None:
    bare = tmp_path / "app.git"
    commits = pushes(bare, tmp_path / "work", 4)
    preview = tmp_path / "feature-x--app.git"
    init_borrowing(preview, bare)
    set_main(preview, commits[2])
    assert not list((preview / "objects").rglob("*.pack")), "nothing is copied"
    assert head_commit(preview) == commits[2]
    assert read_file(preview, commits[2], "app.txt") == b"version 1"

    with opened(preview):
        assert not compact.merge_if_many(bare, merge_at=2), "merged under a preview's reader"
    assert compact.merge_if_many(bare, merge_at=2)

    assert_every_commit_readable(preview, commits)
    assert resolve_commit(preview, commits[3][:10]) == commits[3]
