"""Which daemon, token and app a client command uses when nothing is named: flags and
variables first, then `temps login`'s file, then the local install's client file, then the
repository's `temps` remote. Real files, a real git repository, the real CLI parser."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.cli import credentials
from receiver.cli.appwords import take_app
from receiver.cli.target import Target, resolve
from tests.support.apprepo import git


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No TEMPS_ variable, a config dir and client file of the test's own, cwd outside any
    repository."""
    for name in list(os.environ):
        if name.startswith("TEMPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("TEMPS_CLIENT_FILE", str(tmp_path / "etc" / "client.toml"))
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    yield tmp_path


def local_install(tmp_path: Path, token: str | None = "local-token") -> Path:
    """The client file an install writes, naming a home of the test's own (with an admin
    token, or none, as on a machine where temps is not installed)."""
    home = tmp_path / "var-lib-temps"
    home.mkdir()
    if token is not None:
        (home / "admin-token").write_text(token + "\n")
    client = tmp_path / "etc" / "client.toml"
    client.parent.mkdir()
    client.write_text(f'url = "http://127.0.0.1:7777"\nhome = "{home}"\n')
    return home


def repository(tmp_path: Path, remote: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "work"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "temps", remote)
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    return repo


def test_the_local_install_is_found_without_any_variable(clean: Path) -> None:
    local_install(clean)
    assert resolve(None, None) == Target("http://127.0.0.1:7777", "local-token")


def test_a_login_comes_before_the_local_install(clean: Path) -> None:
    local_install(clean)
    credentials.save(credentials.Stored("https://control.example", "remote-token", "/ca.pem"))
    assert resolve(None, None) == Target("https://control.example", "remote-token", "/ca.pem")


def test_variables_come_before_everything(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local_install(clean)
    credentials.save(credentials.Stored("https://control.example", "remote-token"))
    monkeypatch.setenv("TEMPS_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("TEMPS_TOKEN", "given")
    assert resolve(None, None) == Target("http://127.0.0.1:9999", "given")
    assert resolve("http://elsewhere:1", None) == Target("http://elsewhere:1", "given")


def test_a_url_named_on_the_command_line_uses_the_login_of_that_daemon(clean: Path) -> None:
    credentials.save(credentials.Stored("https://control.example", "remote-token"))
    assert resolve("https://CONTROL.example", None).token == "remote-token"


def test_the_remote_carries_daemon_and_token_when_there_is_no_install(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_install(clean, token=None)
    repository(clean, "http://temps:t%2Fk@127.0.0.1:7100/shop.git", monkeypatch)
    assert resolve(None, None) == Target("http://127.0.0.1:7100", "t/k")
    assert take_app(None, [], 1) == ("shop", [])


def test_without_any_token_the_error_says_what_to_do(clean: Path) -> None:
    home = local_install(clean, token=None)
    with pytest.raises(SystemExit) as exited:
        resolve(None, None)
    message = str(exited.value)
    assert "temps login http://127.0.0.1:7777" in message
    assert "TEMPS_TOKEN" in message
    assert str(home / "admin-token") in message


def test_a_login_is_stored_for_the_user_alone_and_forgotten(clean: Path) -> None:
    where = credentials.save(credentials.Stored("https://a.example", "secret"))
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert stat.S_IMODE(where.parent.stat().st_mode) == 0o700
    assert credentials.load() == credentials.Stored("https://a.example", "secret")
    assert credentials.forget() == credentials.Stored("https://a.example", "secret")
    assert not where.exists() and credentials.load() is None


@pytest.mark.parametrize(
    ("given", "words", "full", "least", "expected"),
    [
        ("other", ["5"], 2, None, ("other", ["5"])),  # -a APP: every word is the command's
        (None, ["shop", "5"], 2, None, ("shop", ["5"])),  # the full form names the app
        (None, ["5"], 2, None, ("inferred", ["5"])),  # one word fewer: the remote's app
        (None, ["web"], 2, 1, ("inferred", ["web"])),  # stop [APP] [PROCESS], in a repo
        (None, ["shop", "web"], 2, 1, ("shop", ["web"])),
    ],
)
def test_the_app_comes_from_the_words_the_flag_or_the_remote(
    clean: Path,
    monkeypatch: pytest.MonkeyPatch,
    given: str | None,
    words: list[str],
    full: int,
    least: int | None,
    expected: tuple[str, list[str]],
) -> None:
    repository(clean, "https://control.example/inferred.git", monkeypatch)
    assert take_app(given, words, full, least) == expected


def test_outside_a_repository_a_lone_word_is_the_app_where_it_may_be(clean: Path) -> None:
    assert take_app(None, ["shop"], 2, least=1) == ("shop", [])
    with pytest.raises(SystemExit, match="which app"):
        take_app(None, [], 1)
