"""receive-pack through pipeline.git.serve: real packs made by git, sent as git sends them
over smart HTTP, answered by dulwich with our update hook in place."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.git.repo import init_bare
from pipeline.git.serve import ZERO_SHA, Progress, serve
from tests.support.apprepo import git, git_env
from tests.support.disk import fill, small_disk

MAIN = "refs/heads/main"
OnRef = Callable[[str, str, str, Progress], str | None]


class Pushed:
    """What the pusher got back: the report-status lines and the `remote:` text."""

    def __init__(self, answer: bytes) -> None:
        data, progress = b"", b""
        for packet in _pkt_lines(answer):
            if packet[:1] == b"\x01":
                data += packet[1:]
            elif packet[:1] == b"\x02":
                progress += packet[1:]
        self.report = [line.decode().rstrip("\n") for line in _pkt_lines(data)]
        self.progress = progress.decode()


def _pkt_lines(stream: bytes) -> list[bytes]:
    lines, at = [], 0
    while at < len(stream):
        length = int(stream[at : at + 4], 16)
        if length > 4:
            lines.append(stream[at + 4 : at + length])
        at += max(length, 4)
    return lines


def _pkt(text: str) -> bytes:
    return f"{len(text) + 4:04x}{text}".encode()


def push(bare: Path, work: Path, old: str, new: str, on_ref: OnRef) -> Pushed:
    """One `git push` of `new` over `old` to main, as git's smart HTTP client sends it."""
    wanted = f"{new}\n" if old == ZERO_SHA else f"{new}\n^{old}\n"
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs"],
        cwd=work,
        input=wanted.encode(),
        capture_output=True,
        env=git_env(),
        check=True,
    ).stdout
    body = _pkt(f"{old} {new} {MAIN}\0report-status side-band-64k\n") + b"0000" + pack
    answer: list[bytes] = []

    def write(data: bytes) -> int:
        answer.append(data)
        return len(data)

    serve(bare, "git-receive-pack", io.BytesIO(body).read, write, on_ref)
    return Pushed(b"".join(answer))


def accept(_ref: str, _old: str, _new: str, _progress: Progress) -> str | None:
    return None


def main_of(bare: Path) -> str:
    return git(bare, "rev-parse", MAIN).strip()


def commit(work: Path, text: str) -> str:
    (work / "app.txt").write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", text)
    return git(work, "rev-parse", "HEAD").strip()


def pushed_once(bare: Path, work: Path) -> str:
    """A bare repo at `bare` whose main is the first commit of a work repo at `work`,
    pushed through serve; returns that commit."""
    init_bare(bare)
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.name", "T")
    git(work, "config", "user.email", "t@example.invalid")
    first = commit(work, "one")
    assert push(bare, work, ZERO_SHA, first, accept).report == ["unpack ok", f"ok {MAIN}"]
    return first


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path, str]:
    """A bare repo whose main is the first commit of a work repo, pushed through serve."""
    bare, work = tmp_path / "app.git", tmp_path / "work"
    return bare, work, pushed_once(bare, work)


def test_the_ref_moves_after_the_hook_accepts_and_progress_reaches_the_pusher(
    repos: tuple[Path, Path, str],
) -> None:
    bare, work, first = repos
    second = commit(work, "two")
    seen: list[tuple[str, str, str, str]] = []

    def deploy(ref: str, old: str, new: str, progress: Progress) -> str | None:
        seen.append((ref, old, new, main_of(bare)))
        progress("-----> deploying\n")
        progress("")
        return None

    pushed = push(bare, work, first, second, deploy)
    assert seen == [(MAIN, first, second, first)], "main moved before the hook decided"
    assert pushed.report == ["unpack ok", f"ok {MAIN}"]
    assert pushed.progress == "-----> deploying\n"
    assert main_of(bare) == second


def fail(_ref: str, _old: str, _new: str, _progress: Progress) -> str | None:
    return "health check failed:\n  no answer on /up"


def crash(_ref: str, _old: str, _new: str, _progress: Progress) -> str | None:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("on_ref", "reason"),
    [
        (fail, "health check failed: no answer on /up"),
        (crash, "internal error in temps; see the daemon log"),
    ],
    ids=["refused", "crashed"],
)
def test_a_refused_ref_keeps_its_commit_and_the_pusher_sees_the_reason(
    repos: tuple[Path, Path, str], on_ref: OnRef, reason: str
) -> None:
    bare, work, first = repos
    pushed = push(bare, work, first, commit(work, "two"), on_ref)
    assert pushed.report == ["unpack ok", f"ng {MAIN} {reason}"]
    assert main_of(bare) == first


def test_an_accepted_ref_names_its_commit_though_another_push_moved_it_meanwhile(
    repos: tuple[Path, Path, str],
) -> None:
    bare, work, first = repos
    other = commit(work, "other")
    second = commit(work, "two")

    def deploy_while_another_lands(_ref: str, _old: str, _new: str, _p: Progress) -> str | None:
        git(bare, "update-ref", MAIN, other)
        return None

    pushed = push(bare, work, first, second, deploy_while_another_lands)
    assert pushed.report == ["unpack ok", f"ok {MAIN}"]
    assert main_of(bare) == second


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_pack_the_disk_has_no_room_for_is_refused_naming_it_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", 4) as mounted:
        bare, work = mounted / "app.git", tmp_path / "work"
        first = pushed_once(bare, work)
        (work / "noise.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # does not compress
        second = commit(work, "two")
        filler = fill(mounted, leave=512 * 1024)

        pushed = push(bare, work, first, second, accept)

        assert len(pushed.report) == 1, pushed.report  # no ref was updated, no hook ran
        assert pushed.report[0].startswith(f"unpack the disk holding {bare} is full (")
        assert pushed.report[0].endswith("free space and push again")
        assert main_of(bare) == first
        assert not list((bare / "objects").glob("tmp_pack_*")), "the partial pack was kept"
        filler.unlink()
        assert push(bare, work, first, second, accept).report == ["unpack ok", f"ok {MAIN}"]
        assert main_of(bare) == second
