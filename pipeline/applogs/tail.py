"""An app's tail: the newest lines of the containers that serve it, then every line they
print next, following the app across deploys, scaling and restarts.

One thread watches which containers serve (`sources.serving`, every `interval`), and one
follower thread per container reads its log. A follower starts where the first read left
off, or from the first line of a container that came later (it is new: nothing of it was
shown), and reads until its container stops; a container that starts again (Docker's restart
policy, or restored under its name with a new id) is taken up again at its cursor or from its
first line. So across a switch the old containers' streams go on until they have drained and
stopped, the new ones' start from their start: no gap, and no line twice.

Lines wait in a bounded queue for the client: a slow reader holds the followers back (the
engine keeps the lines meanwhile) instead of growing memory. `close()` ends it from any
thread: the open log requests are shut down under their blocked reads, and every thread ends.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import structlog

from pipeline.applogs import sources
from pipeline.applogs.lines import DEFAULT_LINES, MAX_LINES, AppLine, Cursor, Label, Notice, Resumed
from pipeline.errors import NotFound, RuntimeUnavailable, TailLimitReached, TempsError
from pipeline.runtime import ContainerState, LogLine, LogStream, Runtime
from pipeline.sqlite.store import Store

log = structlog.get_logger()

QUEUED = 2_000  # lines waiting for a slow client before the followers wait for it
BATCH = 500  # lines handed over at once
Item = AppLine | Notice


@dataclass(frozen=True)
class TailRequest:
    process: str | None = None  # one process type, or all
    lines: int | None = None  # the newest lines shown first; None: DEFAULT_LINES, or all since
    since: int | None = None  # nanoseconds since the epoch
    follow: bool = False

    @property
    def first(self) -> int:
        """How many lines are shown first."""
        if self.lines is not None:
            return min(self.lines, MAX_LINES)
        return MAX_LINES if self.since else DEFAULT_LINES


class AppTail:
    def __init__(
        self,
        runtime: Runtime,
        store: Store,
        app: str,
        request: TailRequest,
        interval: float = 0.5,
        on_close: Callable[[AppTail], None] | None = None,
    ) -> None:
        self.runtime, self.store, self.app, self.request = runtime, store, app, request
        self.interval = interval
        self._on_close = on_close
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Item] = queue.Queue(QUEUED)
        self._wanted: set[str] = set()
        self._followers: dict[str, threading.Thread] = {}
        # Where each container's log was left: its id then, and the cursor in it.
        self._left: dict[str, tuple[str, Cursor]] = {}
        self._streams: set[LogStream] = set()
        self._idle_said = False

    # --- what the client calls -------------------------------------------------------------

    def backlog(self) -> list[Item]:
        """The newest `request.first` lines of the containers that serve now, oldest first,
        from `request.since` on; the followers take up each log after them. With no
        container to read, a notice that says so."""
        labels = sources.serving(self.store, self.app, self.request.process)
        with self._lock:
            self._wanted = {label.container for label in labels}
        now = time.time_ns()
        if not labels:
            self._idle_said = True
            return [self._idle(now)]
        found: list[AppLine] = []
        for label in labels:
            state = self.runtime.state(label.container)
            if not state.id:
                continue  # not there yet: its follower reads it from its first line
            if self.request.first == 0:
                self._left[label.container] = (state.id, Cursor(now))
                continue
            read = Resumed(Cursor(self.request.since or 0))
            try:
                with self._reading(state.id, read, self.request.first, follow=False) as lines:
                    found += [AppLine(label, line) for line in lines]
            except NotFound:
                continue  # removed meanwhile: a container of that name is read from its start
            self._left[label.container] = (state.id, read.cursor)
        found.sort(key=lambda line: line.at)
        return list(found[-self.request.first :] if self.request.first else [])

    def start(self) -> None:
        """Follow from where `backlog` left off."""
        threading.Thread(target=self._watch, name=f"applogs-{self.app}", daemon=True).start()

    def take(self, wait: float) -> list[Item]:
        """What arrived, waiting up to `wait` seconds for something."""
        try:
            items = [self._queue.get(timeout=wait)]
        except queue.Empty:
            return []
        while len(items) < BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def close(self) -> None:
        """End the tail: returns at once, its threads end on their own."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            streams, self._streams = list(self._streams), set()
        for stream in streams:
            stream.close()
        if self._on_close is not None:
            self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    # --- the watcher -----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed.is_set():
            try:
                self._refresh()
            except TempsError as error:
                log.warning("applogs.watch_failed", app=self.app, error=str(error))
            self._closed.wait(self.interval)

    def _refresh(self) -> None:
        labels = sources.serving(self.store, self.app, self.request.process)
        with self._lock:
            if self._closed.is_set():
                return
            self._wanted = {label.container for label in labels}
            for label in labels:
                if label.container not in self._followers:
                    follower = threading.Thread(
                        target=self._follow,
                        args=(label,),
                        name=f"applogs-{self.app}-{label}-v{label.release}",
                        daemon=True,
                    )
                    self._followers[label.container] = follower
                    follower.start()
            idle = not self._followers
        if idle and not self._idle_said:
            self._deliver(self._idle(time.time_ns()))
        self._idle_said = idle

    def _idle(self, now: int) -> Notice:
        which = f" ({self.request.process})" if self.request.process else ""
        return Notice(now, f"no container of {self.app}{which} runs now")

    def _wants(self, name: str) -> bool:
        with self._lock:
            return name in self._wanted

    # --- one follower per container --------------------------------------------------------

    def _follow(self, label: Label) -> None:
        name = label.container
        with self._lock:
            known, cursor = self._left.get(name, ("", Cursor()))
        read_out: tuple[str, float | None] | None = None  # a stopped container read to its end
        try:
            while not self._closed.is_set():
                state = self._state(name)
                if state is None or not state.id:
                    if not self._wants(name):
                        return
                    self._closed.wait(self.interval)
                    continue
                if state.id != known:  # a new container under that name: all of it is new
                    known, cursor = state.id, Cursor()
                if state.status != "running" and read_out == (state.id, state.started_at):
                    if not self._wants(name):
                        return
                    self._closed.wait(self.interval)
                    continue
                cursor = self._read_on(label, known, cursor)
                after = self._state(name)
                if after is not None and after.id == known and after.status != "running":
                    read_out = (after.id, after.started_at)
                elif after is not None and after.id == known:
                    self._closed.wait(self.interval)  # the stream broke, not the container
        finally:
            with self._lock:
                self._left[name] = (known, cursor)
                self._followers.pop(name, None)

    def _read_on(self, label: Label, container_id: str, cursor: Cursor) -> Cursor:
        """Deliver the container's lines after `cursor` until it stops; the new cursor."""
        read = Resumed(cursor)
        try:
            with self._reading(container_id, read, None, follow=True) as lines:
                for line in lines:
                    self._deliver(AppLine(label, line))
        except (NotFound, RuntimeUnavailable) as error:  # removed meanwhile, or engine away
            log.info("applogs.read_ended", app=self.app, container=label.container, why=str(error))
            self._closed.wait(self.interval)
        return read.cursor

    def _state(self, name: str) -> ContainerState | None:
        try:
            return self.runtime.state(name)
        except RuntimeUnavailable:
            return None

    @contextmanager
    def _reading(
        self, container_id: str, read: Resumed, limit: int | None, follow: bool
    ) -> Iterator[Iterator[LogLine]]:
        """One log request, open while in the block; `close()` ends it under its read."""
        stream = self.runtime.log_stream(container_id, read.start.since, limit, follow)
        with self._lock:
            if self._closed.is_set():
                stream.close()
                yield iter(())
                return
            self._streams.add(stream)
        try:
            yield (line for line in stream if read.admits(line))
        finally:
            with self._lock:
                self._streams.discard(stream)
            stream.close()

    def _deliver(self, item: Item) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.25)
                return
            except queue.Full:
                continue


@dataclass(frozen=True)
class TailLimits:
    """How many tails may be open at once: in all, and of one app (0: no limit)."""

    total: int = 0
    per_app: int = 0


class Tails:
    """The tails open in the daemon: counted for /metrics and against their limits, all
    closed when it stops."""

    def __init__(
        self, runtime: Runtime, store: Store, interval: float, limits: TailLimits = TailLimits()
    ) -> None:
        self.runtime, self.store, self.interval = runtime, store, interval
        self.limits = limits
        self._open: set[AppTail] = set()
        self._lock = threading.Lock()

    def open(self, app: str, request: TailRequest) -> AppTail:
        """A new tail of the app; TailLimitReached when one more would pass a limit."""
        with self._lock:
            self._refuse_past_limits(app)
            tail = AppTail(self.runtime, self.store, app, request, self.interval, self._forget)
            self._open.add(tail)
        return tail

    def _refuse_past_limits(self, app: str) -> None:
        """(Call with the lock held.)"""
        total, per_app = self.limits.total, self.limits.per_app
        if total and len(self._open) >= total:
            raise TailLimitReached(
                f"{total} log tails are open in the daemon, as many as it allows "
                "(--max-log-tails): end one, or try again later"
            )
        if per_app and sum(tail.app == app for tail in self._open) >= per_app:
            raise TailLimitReached(
                f"app {app!r} has {per_app} log tails open, as many as it may "
                "(--max-log-tails-per-app): end one of them first"
            )

    def _forget(self, tail: AppTail) -> None:
        with self._lock:
            self._open.discard(tail)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def streams(self) -> int:
        """Log requests open to the engine for them."""
        with self._lock:
            tails = list(self._open)
        return sum(tail.open_streams for tail in tails)

    def close_all(self) -> None:
        with self._lock:
            tails = list(self._open)
        for tail in tails:
            tail.close()
