"""structlog set-up: JSON lines for machines, a console renderer on a terminal."""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO

import structlog


class SafeLogger:
    """structlog's PrintLogger, except that a line that cannot be written (a full disk, a
    closed pipe) is dropped: logging must never be what fails a deploy or stalls a lane."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        try:
            with self._lock:
                self._file.write(message + "\n")
                self._file.flush()
        except (OSError, ValueError):
            pass

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def configure(level: int = logging.INFO) -> None:
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: SafeLogger(sys.stderr),
        cache_logger_on_first_use=True,
    )
