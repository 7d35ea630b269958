"""A private image registry on loopback: Debian's `docker-registry` with its own config file,
htpasswd authentication (`htpasswd -B`, bcrypt as the registry requires) unless its username
is empty, and images of the test busybox site pushed to it from the host's engine.

Docker talks plain HTTP to a registry on 127.0.0.0/8, so no certificate is needed. The
registry reads its password file at start: `restart` with another password is a password
changed at the registry, which makes the one temps keeps wrong.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx

from tests.support.busybox import BUSYBOX_IMAGE
from tests.support.ports import free_port
from tests.support.wait import poll

BINARY = Path("/usr/bin/docker-registry")
START_TIMEOUT = 30.0


@dataclass
class Registry:
    home: Path
    username: str
    password: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        self.home.mkdir(parents=True, exist_ok=True)
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.home / "data")}},
            "http": {"addr": self.address},
        }
        if self.username:
            htpasswd = self.home / "htpasswd"
            subprocess.run(
                ["htpasswd", "-B", "-b", "-c", str(htpasswd), self.username, self.password],
                check=True,
                capture_output=True,
            )
            config["auth"] = {"htpasswd": {"realm": "temps-test", "path": str(htpasswd)}}
        (self.home / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        with open(self.home / "registry.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(BINARY), "serve", str(self.home / "config.yml")],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        if not poll(self._answers, bool, timeout=START_TIMEOUT, interval=0.1):
            raise RuntimeError(f"registry did not answer: see {self.home / 'registry.log'}")
        return self

    def _answers(self) -> bool:
        try:
            # 401 without credentials: it serves, and it wants them (an empty username: none).
            status = httpx.get(f"http://{self.address}/v2/", timeout=2).status_code
            return status == (401 if self.username else 200)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart(self, password: str) -> None:
        """Start again, on the same port and storage, with the user's password changed."""
        self.stop()
        self.password = password
        self.start()

    def push_site(self, name: str, tag: str, version: str) -> str:
        """Build the busybox site serving `version` on $PORT (with /health), push it as
        NAME:TAG, remove the local tag; return the registry's digest of it."""
        client = docker.from_env(timeout=300)
        repository = f"{self.address}/{name}"
        try:
            build_site(f"{repository}:{tag}", version)
            auth = {"username": self.username, "password": self.password}
            pushing = client.images.push(
                repository, tag, stream=True, decode=True, auth_config=auth
            )
            for line in pushing:
                if "error" in line:
                    raise RuntimeError(f"push of {repository}:{tag} failed: {line['error']}")
            digests = client.images.get(f"{repository}:{tag}").attrs["RepoDigests"]
            digest = next(d for d in digests if d.startswith(f"{repository}@"))
            client.images.remove(f"{repository}:{tag}")
            return str(digest.partition("@")[2])
        finally:
            client.close()


def build_site(tag: str, version: str) -> str:
    """The busybox site serving `version` on $PORT, with /health, built on the host's engine
    as `tag`."""
    client = docker.from_env(timeout=300)
    try:
        client.images.build(fileobj=_site_context(version), custom_context=True, tag=tag, rm=True)
    finally:
        client.close()
    return tag


def _site_context(version: str) -> io.BytesIO:
    """A build context: the test base image, an index naming `version`, a health file."""
    files = {
        "Dockerfile": (
            f"FROM {BUSYBOX_IMAGE}\nCOPY www /www\n"
            'CMD ["/bin/sh", "-c", "exec httpd -f -p \\"$PORT\\" -h /www"]\n'
        ),
        "www/index.html": f"version {version}\n",
        "www/health": "ok\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            entry = tarfile.TarInfo(path)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    buffer.seek(0)
    return buffer
