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
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Check now rather than at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.check_now()

    def check_now(self) -> None:
        """One check, on the caller's thread; a failure is logged."""
        try:
            self.check()
        except (TempsError, OSError) as exc:
            log.error(f"{self.name}.check_failed", error=str(exc))
