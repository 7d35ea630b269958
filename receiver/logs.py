"""structlog set-up: JSON lines for machines, a console renderer on a terminal; to stderr, or
to a file rotated by size."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import structlog

KEPT_FILES = 3


class _DroppingErrors:
    """A line that cannot be written (a full disk, a closed pipe) is dropped: logging must
    never be what fails a deploy or stalls a lane."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class _StreamHandler(_DroppingErrors, logging.StreamHandler):  # type: ignore[type-arg]
    pass


class _RotatingHandler(_DroppingErrors, logging.handlers.RotatingFileHandler):
    pass


class _HandlerLogger:
    """structlog's logger: each rendered line goes to the one handler."""

    def __init__(self, handler: logging.Handler) -> None:
        self._handler = handler

    def msg(self, message: str) -> None:
        self._handler.handle(logging.makeLogRecord({"msg": message, "levelno": logging.INFO}))

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _handler(log_file: Path | None, max_bytes: int) -> logging.Handler:
    if log_file is None:
        return _StreamHandler(sys.stderr)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    return _RotatingHandler(log_file, maxBytes=max_bytes, backupCount=KEPT_FILES, encoding="utf-8")


def configure(
    level: int = logging.INFO, log_file: Path | None = None, max_bytes: int = 50 * 1024 * 1024
) -> None:
    handler = _handler(log_file, max_bytes)
    handler.setFormatter(logging.Formatter("%(message)s"))
    # uvicorn's and the libraries' own lines: only their warnings, in the same file.
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    sink = _HandlerLogger(handler)
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if log_file is None and sys.stderr.isatty()
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
        logger_factory=lambda *_: sink,
        cache_logger_on_first_use=True,
    )
