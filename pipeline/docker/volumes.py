"""A named volume as a tar stream and back, through the Engine API (backups).

A helper container is created, never started, from the app's own image with the volume
mounted at MOUNT: the engine reads (`get_archive`) and writes (`put_archive`) its files
itself, so the image needs no `tar` and nothing of the app runs. Only emptying a volume
before a restore runs something: `rm` in a helper of the same image (a shell and `rm` are
the one need a restore has of the image).

Helpers carry the home's label and no app's: a daemon that dies while one exists removes it
at its next start, with the other orphans.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

import docker
import docker.errors
import requests

from pipeline.docker.build import first_line
from pipeline.docker.engine import LazyClient, engine_errors
from pipeline.errors import BackupFailed

MOUNT = "/volume"  # where a helper mounts the volume; the archive's entries start "volume/"
ROLE = "backup"
CHUNK = 1024 * 1024
API_TIMEOUT = 600  # a stream of a large volume is one long call


class VolumeArchives:
    def __init__(self, instance: str, home_id: str) -> None:
        self.instance = instance
        self.home_id = home_id
        self._client = LazyClient(lambda: docker.from_env(timeout=API_TIMEOUT))

    @property
    def client(self) -> docker.DockerClient:
        return self._client.get()

    def exists(self, volume: str) -> bool:
        with engine_errors("inspect a volume"):
            try:
                self.client.api.inspect_volume(volume)
            except docker.errors.NotFound:
                return False
        return True

    def make_scratch(self) -> str:
        """A new empty volume of this home's, for a verification to restore into."""
        name = f"temps-{self.home_id}-scratch-{secrets.token_hex(4)}"
        labels = {"temps.home": self.instance, "temps.role": "backup-scratch"}
        with engine_errors("create a volume"):
            self.client.api.create_volume(name, labels=labels)
        return name

    def remove(self, volume: str) -> None:
        with engine_errors("remove a volume"), contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_volume(volume, force=True)

    @contextlib.contextmanager
    def reading(self, volume: str, image: str) -> Iterator[Iterator[bytes]]:
        """The volume's files as a tar stream (entries under `volume/`)."""
        with self._helper(volume, image) as name, engine_errors("read a volume"):
            try:
                chunks, _stat = self.client.api.get_archive(name, MOUNT, chunk_size=CHUNK)
            except docker.errors.APIError as exc:
                raise BackupFailed(f"could not read volume {volume}: {_why(exc)}") from exc
            yield _passed(chunks, volume)

    def write(self, volume: str, image: str, tar: Iterable[bytes]) -> None:
        """Unpack a tar stream of entries under `volume/` into the volume."""
        with self._helper(volume, image) as name, engine_errors("write a volume"):
            try:
                ok = self.client.api.put_archive(name, "/", _joined(tar))
            except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
                raise BackupFailed(f"could not write volume {volume}: {_why(exc)}") from exc
            if not ok:
                raise BackupFailed(f"the engine refused to write volume {volume}")

    def empty(self, volume: str, image: str, timeout: float) -> None:
        """Remove every file of the volume, hidden ones too."""
        script = f"rm -rf {MOUNT}/* {MOUNT}/.[!.]* {MOUNT}/..?*"
        with self._helper(volume, image, script) as name, engine_errors("empty a volume"):
            try:
                self.client.api.start(name)
                result = self.client.api.wait(name, timeout=timeout)
            except (docker.errors.APIError, requests.exceptions.ReadTimeout) as exc:
                raise BackupFailed(f"could not empty volume {volume}: {_why(exc)}") from exc
            code = int(result.get("StatusCode", -1))
            if code != 0:
                raise BackupFailed(
                    f"emptying volume {volume} with `sh -c rm` in the app's image exited {code}"
                )

    def pause(self, containers: Iterable[str]) -> list[str]:
        """Pause the running containers named; those paused, to unpause."""
        paused = []
        for name in containers:
            with engine_errors("pause a container"), contextlib.suppress(docker.errors.APIError):
                self.client.api.pause(name)
                paused.append(name)
        return paused

    def unpause(self, containers: Iterable[str]) -> None:
        for name in containers:
            with engine_errors("unpause a container"), contextlib.suppress(docker.errors.APIError):
                self.client.api.unpause(name)

    @contextlib.contextmanager
    def _helper(self, volume: str, image: str, script: str | None = None) -> Iterator[str]:
        """A helper with the volume at MOUNT; it runs `script` with `sh -c` when started
        (the image's entrypoint set aside), and is never started without one."""
        name = f"temps-{self.home_id}-{ROLE}-{secrets.token_hex(4)}"
        with engine_errors("create a backup helper"):
            try:
                self.client.api.create_container(
                    image,
                    command=[script] if script else ["temps-backup-helper"],
                    entrypoint=["/bin/sh", "-c"] if script else None,
                    name=name,
                    labels={"temps.home": self.instance, "temps.role": ROLE},
                    network_disabled=True,
                    host_config=self.client.api.create_host_config(
                        binds={volume: {"bind": MOUNT, "mode": "rw"}}, init=True
                    ),
                )
            except docker.errors.APIError as exc:
                raise BackupFailed(
                    f"could not create a helper for volume {volume} from {image}: {_why(exc)}"
                ) from exc
        try:
            yield name
        finally:
            with (
                engine_errors("remove a backup helper"),
                contextlib.suppress(docker.errors.NotFound),
            ):
                self.client.api.remove_container(name, force=True)


def _passed(chunks: Iterable[bytes], volume: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
        raise BackupFailed(f"reading volume {volume} broke off: {exc}") from exc


def _joined(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The SDK sends an iterator as a chunked body."""
    yield from chunks


def _why(exc: Exception) -> str:
    explanation: Any = getattr(exc, "explanation", None)
    return first_line(str(explanation or exc))
