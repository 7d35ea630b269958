"""`bash install.sh` on this machine, then `temps` as a root shell types it: on PATH, with no
variable set, finding the daemon's URL and admin token by itself, creating an app, deploying a
`git push` and showing its releases and log.

The install goes to a prefix, home and ports of the test's own (the daemon runs in the
background: no systemd here); `temps` is linked into /usr/local/bin and the client file written
to /etc/temps/client.toml, where a real install puts them, and both are put back afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.apprepo import git, git_push, make_app_repo
from tests.support.daemon import TempsDaemon, free_port
from tests.support.wait import poll

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
LINK = Path("/usr/local/bin/temps")
CLIENT_FILE = Path("/etc/temps/client.toml")
INSTALL_TIMEOUT = 1200.0
SHELL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Installed:
    home: Path
    api: str
    shell_home: Path  # $HOME of the root shell that types the commands


def kept(path: Path) -> bytes | str | None:
    """What is at `path` before the install: a link's target, a file's bytes, or nothing."""
    if path.is_symlink():
        return os.readlink(path)
    return path.read_bytes() if path.exists() else None


def put_back(path: Path, was: bytes | str | None) -> None:
    path.unlink(missing_ok=True)
    if isinstance(was, str):
        path.symlink_to(was)
    elif was is not None:
        path.write_bytes(was)


@pytest.fixture(scope="module")
def installed(busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("install")
    home, api = base / "home", f"127.0.0.1:{free_port()}"
    before = {path: kept(path) for path in (LINK, CLIENT_FILE)}
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPS_")}
    env.update(
        TEMPS_PREFIX=str(base / "opt"),
        TEMPS_HOME=str(home),
        TEMPS_LISTEN=api,
        TEMPS_HTTP=f"127.0.0.1:{free_port()}",
        TEMPS_TRAEFIK_API=f"127.0.0.1:{free_port()}",
    )
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "install.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "temps apps create myapp" in done.stdout, done.stdout
        yield Installed(home, f"http://{api}", base / "root")
    finally:
        pid = (home / "temps.pid").read_text().strip() if (home / "temps.pid").exists() else ""
        if pid.isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
            poll(lambda: Path(f"/proc/{pid}").exists(), lambda alive: not alive, timeout=60)
        leftover = TempsDaemon(home=home)
        leftover.apps = ["installed"]
        leftover.stop()  # Traefik, containers, networks and images of this home
        for path, was in before.items():
            put_back(path, was)
        shutil.rmtree(base / "opt", ignore_errors=True)


def shell(installed: Installed, *words: str, cwd: Path | None = None) -> str:
    """`temps WORDS` as typed in a root shell: found on PATH, no TEMPS_ variable."""
    installed.shell_home.mkdir(exist_ok=True)
    env = {"PATH": SHELL_PATH, "HOME": str(installed.shell_home), "LANG": "C.UTF-8"}
    done = subprocess.run(
        ["temps", *words],
        cwd=cwd or installed.shell_home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"temps {' '.join(words)}: {done.stdout}{done.stderr}"
    return done.stdout


def test_the_installed_cli_finds_the_daemon_and_deploys_a_push(
    installed: Installed, tmp_path: Path
) -> None:
    assert LINK.resolve().parent.parent.parent == (installed.home.parent / "opt").resolve()
    assert f'url = "{installed.api}"' in CLIENT_FILE.read_text()

    shell(installed, "apps", "create", "installed")
    assert re.search(r"^installed\s+-", shell(installed, "apps", "list"), re.M)

    repo = tmp_path / "repo"
    make_app_repo(repo, "v1", cmd='echo "hello from v1"; exec httpd -f -p "$PORT" -h /www')
    token = (installed.home / "admin-token").read_text().strip()
    address = installed.api.removeprefix("http://")
    git(repo, "remote", "add", "temps", f"http://temps:{token}@{address}/installed.git")
    code, output = git_push(repo, "temps")
    assert code == 0 and "v1 is live" in output, output

    releases = shell(installed, "releases", "installed")
    assert re.search(r"^v1\s+live\s+push", releases, re.M), releases
    assert "is live" in shell(installed, "releases", "output", "installed")
    assert shell(installed, "releases", cwd=repo) == releases
    assert "is live" in shell(installed, "releases", "output", "installed")
    assert "hello from v1" in shell(installed, "logs", "installed", "-n", "5")
    with tail(installed, "logs", "installed", "--tail", cwd=repo) as lines:
        first = next(line for line in lines if "hello from v1" in line)
    assert " web.1 v1: hello from v1" in first, first


@contextlib.contextmanager
def tail(installed: Installed, *words: str, cwd: Path) -> Iterator[Iterator[str]]:
    """`temps WORDS` left running, its lines read as they come; stopped on leaving."""
    env = {"PATH": SHELL_PATH, "HOME": str(installed.shell_home), "LANG": "C.UTF-8"}
    process = subprocess.Popen(
        ["temps", *words], cwd=cwd, env=env, stdout=subprocess.PIPE, text=True
    )
    timer = threading.Timer(120, process.kill)  # a tail that never shows the line ends
    timer.start()
    try:
        assert process.stdout is not None
        yield iter(process.stdout)
    finally:
        timer.cancel()
        process.terminate()
        process.wait(30)
