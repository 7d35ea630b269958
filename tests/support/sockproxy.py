"""A unix-socket proxy to dockerd that a test can cut and restore.

Pointing a daemon's DOCKER_HOST at it makes "the Docker engine stopped" testable on a
shared host: stopping the proxy closes every connection through it and removes its socket,
so the daemon sees an engine that does not answer, while dockerd itself (and every other
test using it) carries on untouched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

DOCKER_SOCKET = "/var/run/docker.sock"
CHUNK = 64 * 1024
ACCEPT_POLL = 0.2


class _Pair:
    """One proxied connection: the client's socket, dockerd's, and how many copy loops ended."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.ended = 0

    def cut(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.client.close()
        self.upstream.close()


class UnixSocketProxy:
    """Listens on `path`; copies the bytes of each connection both ways to `target`."""

    def __init__(self, path: Path, target: str = DOCKER_SOCKET) -> None:
        self.path = path
        self.target = target
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._pumps: list[threading.Thread] = []
        self.connections = 0  # accepted since the proxy was made, across restarts

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    @property
    def running(self) -> bool:
        return self._listener is not None

    def __enter__(self) -> UnixSocketProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.running:
            return
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        listener.settimeout(ACCEPT_POLL)
        self._stop.clear()
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name="sockproxy-accept", daemon=True
        )
        self._acceptor.start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as an engine going away would."""
        if self._listener is None:
            return
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(5)
        self._listener.close()
        self._listener = None
        self.path.unlink(missing_ok=True)
        with self._lock:
            pairs = list(self._pairs)
            pumps, self._pumps = self._pumps, []
        for pair in pairs:
            pair.cut()
        for pump in pumps:
            pump.join(5)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                upstream.close()
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                self.connections += 1
                self._pairs.add(pair)
                self._pumps = [pump for pump in self._pumps if pump.is_alive()]
                for source, sink in ((client, upstream), (upstream, client)):
                    pump = threading.Thread(
                        target=self._pump,
                        args=(pair, source, sink),
                        name="sockproxy-pump",
                        daemon=True,
                    )
                    self._pumps.append(pump)
                    pump.start()

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    # Half-close: the other direction may still have an answer to deliver.
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
        except OSError:
            pair.cut()
        finally:
            with self._lock:
                pair.ended += 1
                if pair.ended == 2:
                    self._pairs.discard(pair)
                    pair.close()
