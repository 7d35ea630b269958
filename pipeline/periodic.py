"""A check that runs every `interval` seconds on a thread of its own until stopped; a failed
check is logged and the next one runs as planned."""

from __future__ import annotations

import threading

import structlog

from pipeline.errors import TempsError

log = structlog.get_logger()


class Periodic:
    name = "periodic"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except (TempsError, OSError) as exc:
                log.error(f"{self.name}.check_failed", error=str(exc))
