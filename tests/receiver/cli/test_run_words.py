"""Which words of `temps run` are the app, its options and the command: the real parser, and a
real repository with a `temps` remote where one is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.cli import build_parser
from receiver.cli.run import invocation
from tests.support.apprepo import git

Found = tuple[str, bool, float | None, list[str]]


def words(*argv: str) -> Found:
    return invocation(build_parser().parse_args(["run", *argv]))


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "work"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "temps", "http://temps:secret@127.0.0.1:7000/myapp.git")
    monkeypatch.chdir(repo)
    return repo


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["myapp", "--", "python", "manage.py", "migrate"],
         ("myapp", False, None, ["python", "manage.py", "migrate"])),
        (["myapp", "--tty", "sh"], ("myapp", True, None, ["sh"])),
        (["-t", "myapp", "sh", "-l"], ("myapp", True, None, ["sh", "-l"])),
        (["myapp", "ls", "-la"], ("myapp", False, None, ["ls", "-la"])),
        (["myapp", "--timeout", "5", "--", "sleep", "9"], ("myapp", False, 5.0, ["sleep", "9"])),
        (["--timeout=5", "myapp", "-t", "--", "-weird"], ("myapp", True, 5.0, ["-weird"])),
        (["-a", "other", "myapp", "--tty"], ("other", False, None, ["myapp", "--tty"])),
        (["-a", "other", "--", "ls"], ("other", False, None, ["ls"])),
    ],
)  # fmt: skip
def test_outside_a_repository_the_first_word_is_the_app(
    outside: Path, argv: list[str], found: Found
) -> None:
    assert words(*argv) == found


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["python", "manage.py", "migrate"],
         ("myapp", False, None, ["python", "manage.py", "migrate"])),
        (["myapp", "--tty", "sh"], ("myapp", True, None, ["sh"])),
        (["--tty", "sh"], ("myapp", True, None, ["sh"])),
        (["--", "myapp"], ("myapp", False, None, ["myapp"])),
        (["other", "--", "ls"], ("other", False, None, ["ls"])),
    ],
)  # fmt: skip
def test_inside_a_repository_the_first_word_is_the_app_only_when_it_is_the_remotes(
    inside: Path, argv: list[str], found: Found
) -> None:
    assert words(*argv) == found


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["myapp"], "name the command to run"),
        (["myapp", "--"], "name the command to run"),
        (["myapp", "--verbose", "ls"], "--verbose is not an option of temps run"),
        (["myapp", "--timeout", "soon", "ls"], "--timeout takes seconds"),
        (["--", "ls"], "which app?"),
    ],
)
def test_what_is_not_a_run_is_refused_saying_why(
    outside: Path, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        words(*argv)
    assert says in str(refused.value), refused.value
