"""A `temps serve` process under test, on free loopback ports, with its own home dir."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.dockercli import (
    remove_app_images,
    remove_containers_labelled,
    remove_networks_labelled,
)
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPS_BIN = REPO_ROOT / ".venv" / "bin" / "temps"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"  # daemon logs and screenshots kept after a run
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# For a daemon that tests send wrong tokens on purpose, or push to often: git sends its first
# request of every push without credentials and the token only after the 401, which the
# daemon counts as a failed login (10 a minute lock an address out by default).
MANY_FAILURES = ["--auth-failures", "1000000"]


# The home id each app created through a TempsDaemon runs under: temps names an app's
# containers and image tags with it (`container_name`), so tests can predict them.
APP_HOME_IDS: dict[str, str] = {}


def home_id_of(home: Path) -> str:
    """The id temps derives from its home (Settings.instance_id)."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]


def container_name(app: str, number: int) -> str:
    """The name temps gives release `number`'s container of an app a test created."""
    return f"temps-{app}-v{number}-{APP_HOME_IDS[app]}"


def remove_build_cgroups(home_id: str) -> None:
    """The cgroup a home's daemon made for its builds, in every controller (empty by now)."""
    root = Path("/sys/fs/cgroup")
    for path in [root / f"temps-build-{home_id}", *root.glob(f"*/temps-build-{home_id}")]:
        for child in path.glob("*"):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            path.rmdir()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return not _pid_alive(pid)


@dataclass
class TempsDaemon:
    home: Path
    api_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    traefik_api_port: int = field(default_factory=free_port)
    domain: str = "localhost"
    https_port: int | None = None  # Traefik's websecure entrypoint, when set
    process: subprocess.Popen[bytes] | None = None
    apps: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)  # more `temps serve` flags
    # Extra environment for `temps serve` (e.g. DOCKER_HOST), laid over the test's own.
    env: dict[str, str] | None = None
    # Where its log goes, when not in the home (a home on a disk a test fills up).
    log_dir: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def log_path(self) -> Path:
        return (self.log_dir or self.home) / "daemon-test.log"

    @property
    def admin_token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def command(self) -> list[str]:
        return [
            str(TEMPS_BIN),
            "serve",
            "--home",
            str(self.home),
            "--listen",
            f"127.0.0.1:{self.api_port}",
            "--http",
            f"127.0.0.1:{self.http_port}",
            "--traefik-api",
            f"127.0.0.1:{self.traefik_api_port}",
            "--domain",
            self.domain,
            *(["--https", f"127.0.0.1:{self.https_port}"] if self.https_port else []),
            *self.extra_args,
        ]

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=None if self.env is None else {**os.environ, **self.env},
            )
        try:
            self._wait_ready()
        except Exception:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"temps serve exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"temps serve not ready in {READY_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the daemon process alone, as a crash would: Traefik, the app containers and
        every file stay as they are, for `restart()` to find."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("the daemon is not running")
        self.process.kill()
        self.process.wait(STOP_TIMEOUT)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        """SIGTERM the daemon and wait for it to exit: (exit code, seconds it took).

        Raises TimeoutError if it is still running after `timeout` (it is then SIGKILLed, so
        the test can go on)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("the daemon is not running")
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
            raise TimeoutError(f"temps serve still running {timeout:g} s after SIGTERM") from None
        return code, time.monotonic() - sent

    def restart(self) -> None:
        """Start a new daemon on the same home and ports, once the previous one has exited."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the daemon is still running")
        self.start()

    def traefik_pid(self) -> int | None:
        """The pid the daemon recorded for its managed Traefik, if any."""
        try:
            return int((self.home / "traefik" / "traefik.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def healthz(self, timeout: float = 10) -> httpx.Response:
        return httpx.get(f"{self.api_url}/healthz", timeout=timeout)

    def stop(self) -> None:
        """Stop the daemon, then what it leaves behind on purpose (Traefik, containers)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        self._stop_traefik()
        remove_containers_labelled(f"temps.home={self.home.resolve()}")
        remove_networks_labelled(f"temps.home={self.home.resolve()}")
        remove_build_cgroups(home_id_of(self.home))
        for app in self.apps:
            remove_app_images(app, home_id_of(self.home))

    def _stop_traefik(self) -> None:
        pid_file = self.home / "traefik" / "traefik.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        if not _pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, STOP_TIMEOUT):
            os.kill(pid, signal.SIGKILL)

    # --- API -------------------------------------------------------------------------------

    def cli_env(self) -> dict[str, str]:
        """The environment of a `temps` command that talks to this daemon: the test's own
        without any TEMPS_ variable, then the daemon's URL and its admin token."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPS_")}
        return env | {"TEMPS_URL": self.api_url, "TEMPS_TOKEN": self.admin_token}

    def client(self) -> httpx.Client:
        # Plain HTTP on loopback: no CA bundle to load, 40 ms of CPU per client, which tests
        # polling for a state pay at every poll.
        return httpx.Client(
            base_url=self.api_url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            verify=False,
        )

    def create_app(self, name: str) -> dict[str, Any]:
        with self.client() as api:
            response = api.post("/api/apps", json={"name": name})
        assert response.status_code == 201, (
            f"create app {name}: {response.status_code} {response.text}"
        )
        self.apps.append(name)
        APP_HOME_IDS[name] = home_id_of(self.home)
        body: dict[str, Any] = response.json()
        return body

    def app(self, name: str) -> dict[str, Any]:
        with self.client() as api:
            response = api.get(f"/api/apps/{name}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def releases(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The app's releases, newest first (the newest `limit` of them)."""
        params = {} if limit is None else {"limit": limit}
        with self.client() as api:
            response = api.get(f"/api/apps/{name}/releases", params=params)
        response.raise_for_status()
        body = response.json()
        # Accept either a bare list or a {"releases": [...]} envelope.
        items: list[dict[str, Any]] = body["releases"] if isinstance(body, dict) else body
        return items

    def release(self, name: str, number: int) -> dict[str, Any]:
        """`GET /api/apps/<app>/releases/<n>`: one release with its events, timings and log."""
        with self.client() as api:
            response = api.get(f"/api/apps/{name}/releases/{number}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def git_url(self, app: str, token: str | None = None) -> str:
        secret = self.admin_token if token is None else token
        return f"http://temps:{secret}@127.0.0.1:{self.api_port}/{app}.git"

    def get_app_page(self, app: str, path: str = "/", timeout: float = 10) -> httpx.Response:
        """One request through Traefik, on a fresh connection."""
        return httpx.get(
            f"{self.http_url}{path}", headers={"Host": f"{app}.{self.domain}"}, timeout=timeout
        )


def start_daemon(
    home: Path,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    attempts: int = 5,
    log_dir: Path | None = None,
) -> TempsDaemon:
    """Start `temps serve`; on free ports taken meanwhile by another process (the daemon's own
    check says "already in use by another program", Traefik's bind "address already in use"),
    pick new ones."""
    for attempt in range(attempts):
        daemon = TempsDaemon(home=home, extra_args=list(args or ()), env=env, log_dir=log_dir)
        try:
            daemon.start()
            return daemon
        except RuntimeError as exc:
            if "already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_daemon(
    home: Path,
    artifact: str,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> Iterator[TempsDaemon]:
    """A started daemon, stopped on exit; its log is kept as `artifacts/<artifact>-daemon.log`."""
    daemon = start_daemon(home, args, env, log_dir=log_dir)
    try:
        yield daemon
    finally:
        daemon.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        if daemon.log_path.exists():
            shutil.copyfile(daemon.log_path, ARTIFACTS / f"{artifact}-daemon.log")
