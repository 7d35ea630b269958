"""The `temps` command as a user types it: `temps login` keeps a daemon's URL and token for
later calls and `temps logout` forgets them; inside a repository whose `temps` remote points
at the daemon, commands need no app and no token. The real CLI, daemon, dockerd and git."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.daemon import TEMPS_BIN, TempsDaemon

pytestmark = pytest.mark.docker


def temps(
    *args: str, cwd: Path, config: Path, stdin: str = "", ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """`temps ARGS` with no TEMPS_ variable, a config dir of the test's own and no local
    install (its client file names a home without a token)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPS_")}
    env.update(
        XDG_CONFIG_HOME=str(config),
        HOME=str(config.parent / "user"),
        TEMPS_CLIENT_FILE=str(config.parent / "no-install.toml"),
    )
    (config.parent / "no-install.toml").write_text(f'home = "{config.parent / "empty"}"\n')
    done = subprocess.run(
        [str(TEMPS_BIN), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert (done.returncode == 0) == ok, (
        f"temps {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    )
    return done


def test_login_is_kept_for_later_calls_and_logout_forgets_it(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    temps_daemon.create_app("cli-login")
    config = tmp_path / "config"
    refused = temps("apps", "list", cwd=tmp_path, config=config, ok=False)
    assert "temps login http://127.0.0.1:7000" in refused.stderr, refused.stderr

    wrong = temps(
        "login", temps_daemon.api_url, cwd=tmp_path, config=config, stdin="nope\n", ok=False
    )
    assert "refused the token" in wrong.stderr and not (config / "temps").exists()

    done = temps(
        "login", temps_daemon.api_url, cwd=tmp_path, config=config,
        stdin=temps_daemon.admin_token + "\n",
    )  # fmt: skip
    assert f"logged in to {temps_daemon.api_url} as admin" in done.stdout, done.stdout
    stored = config / "temps" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert temps_daemon.admin_token not in done.stdout + done.stderr

    listed = temps("apps", "list", cwd=tmp_path, config=config)
    assert re.search(r"^cli-login\s", listed.stdout, re.M), listed.stdout

    out = temps("logout", cwd=tmp_path, config=config)
    assert f"logged out of {temps_daemon.api_url}" in out.stdout and not stored.exists()
    temps("apps", "list", cwd=tmp_path, config=config, ok=False)


def test_inside_a_repository_the_remote_names_the_app_and_the_daemon(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app, repo, config = "cli-here", tmp_path / "repo", tmp_path / "config"
    temps_daemon.create_app(app)
    make_app_repo(repo, "v1")
    git(repo, "remote", "add", "temps", temps_daemon.git_url(app, temps_daemon.admin_token))
    code, output = git_push(repo, "temps")
    assert code == 0, output
    (repo / "www" / "deeper").mkdir(exist_ok=True)
    inside = repo / "www" / "deeper"

    releases = temps("releases", cwd=inside, config=config)
    assert re.search(r"^v1\s+live\s+push", releases.stdout, re.M), releases.stdout

    changed = temps("config", "set", "GREETING=here", cwd=inside, config=config)
    assert re.search(r"^v2 live$", changed.stdout, re.M), changed.stdout
    shown = temps("config", "get", cwd=inside, config=config)
    assert "GREETING=here" in shown.stdout

    formation = temps("ps", cwd=inside, config=config)
    assert formation.stdout.startswith("formation: web=1 (live: v2)"), formation.stdout

    log = temps("releases", "output", cwd=inside, config=config)
    assert "v2 is live" in log.stdout or "is live" in log.stdout, log.stdout

    elsewhere = temps("releases", cwd=tmp_path, config=config, ok=False)
    assert "which app?" in elsewhere.stderr or "no token" in elsewhere.stderr, elsewhere.stderr
    named = temps("releases", "-a", app, cwd=inside, config=config)
    assert named.stdout == temps("releases", cwd=inside, config=config).stdout
