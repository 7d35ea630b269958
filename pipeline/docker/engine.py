"""What both runtimes share of the Docker engine's API: its failures as temps words them, and
its times."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import docker.errors
import requests
import urllib3.exceptions

from pipeline.errors import RuntimeUnavailable


@contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn the SDK's connection failures into RuntimeUnavailable; callers map the rest."""
    try:
        yield
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        docker.errors.DockerException,
    ) as exc:
        if isinstance(exc, docker.errors.APIError):
            raise
        raise RuntimeUnavailable(f"Docker engine unavailable while trying to {action}") from exc


class LazyClient:
    """A Docker client made at its first use, once: the daemon starts whether or not the engine
    answers, and a client that could not connect is tried again at the next use."""

    def __init__(self, make: Callable[[], docker.DockerClient], action: str = "connect") -> None:
        self._make = make
        self._action = action
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def get(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                with engine_errors(self._action):
                    self._client = self._make()
            return self._client


def being_removed(error: docker.errors.APIError) -> bool:
    """The engine's answer to a forced removal while another removal of the container runs
    (the only conflict a forced removal has)."""
    return bool(error.status_code == 409)


def epoch_of(text: str) -> float | None:
    """Docker's RFC 3339 time (nanoseconds, or the zero time before a start) as epoch seconds."""
    head, _dot, fraction = text.rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")
    except ValueError:
        return None
    return moment.timestamp() if moment.year > 1 else None
