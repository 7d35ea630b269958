"""Handover: the connections a leaving slot still holds at its drain_timeout are ended over
the window, oldest first, never more than their share in a second; against real sockets on
this host's kernel (`ss -K`), and with a clock of the test's own for the arithmetic."""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import pytest

from pipeline.drain import handover
from pipeline.drain.handover import Held, held, spread
from pipeline.drain.wait import Handover, Watch, drain
from pipeline.runtime import Drained

ADDRESS = "127.0.0.2"  # an address of its own, as a container's on the bridge would be


class Clock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def each(finish: Callable[[Held], bool]) -> Callable[[Sequence[Held]], list[Held]]:
    """A batch ender made of one that ends a connection at a time."""
    return lambda batch: [c for c in batch if finish(c)]


def made_up(count: int) -> list[Held]:
    return [Held(1000 + i, f"10.0.0.1:{40000 + i}", "172.18.0.5:5000") for i in range(count)]


def test_connections_end_over_the_window_oldest_first_within_their_share_per_second() -> None:
    clock, open_now = Clock(), made_up(200)
    ended_at: dict[Held, float] = {}

    def finish(connection: Held) -> bool:
        open_now.remove(connection)
        ended_at[connection] = clock.now
        return True

    done = spread(
        "172.18.0.5", (5000,), 10.0, look=lambda *_: list(open_now),
        finish=each(finish), clock=clock, sleep=clock.sleep,
    )  # fmt: skip

    assert (done.found, done.ended) == (200, 200) and not open_now
    assert list(ended_at) == made_up(200), "the oldest (lowest inode) first"
    per_second = Counter(math.floor(at) for at in ended_at.values())
    assert max(per_second.values()) <= 200 / 10 + 1, per_second
    assert max(ended_at.values()) <= 10.0 + handover.PAUSE
    assert len(per_second) >= 10, "spread over the whole window, not bunched at its start"


def test_those_that_end_by_themselves_are_not_ended_again() -> None:
    clock, open_now = Clock(), made_up(10)
    ended: list[Held] = []

    def look(*_: object) -> list[Held]:
        if clock.now >= 1.0 and made_up(10)[5] in open_now:
            open_now[:] = [c for c in open_now if c.inode % 2 == 0]  # half leave on their own
        return list(open_now)

    def finish(connection: Held) -> bool:
        open_now.remove(connection)
        ended.append(connection)
        return True

    done = spread("172.18.0.5", (5000,), 4.0, look=look, finish=each(finish),
                  clock=clock, sleep=clock.sleep)  # fmt: skip
    assert not open_now
    assert len(set(ended)) == len(ended) == done.ended < 10


def test_a_kernel_that_cannot_end_one_waits_the_window_out_for_the_app() -> None:
    """Without SOCK_DESTROY nothing is ended here; the app, told by its signal, may still end
    them itself within the window, and the container's stop ends what is left."""
    clock, open_now = Clock(), made_up(5)
    tries: list[Held] = []

    def finish(connection: Held) -> bool:
        tries.append(connection)
        return False

    done = spread("172.18.0.5", (5000,), 3.0, look=lambda *_: list(open_now),
                  finish=each(finish), clock=clock, sleep=clock.sleep)  # fmt: skip
    assert (done.found, done.ended) == (5, 0)
    assert sorted(tries) == made_up(5), "each tried once, not again and again"
    assert clock.now >= 3.0, "the window is waited out"


def test_a_window_of_zero_ends_them_all_at_once() -> None:
    clock, open_now = Clock(), made_up(7)
    done = spread("172.18.0.5", (5000,), 0.0, look=lambda *_: list(open_now),
                  finish=each(lambda c: open_now.remove(c) is None), clock=clock,
                  sleep=clock.sleep)  # fmt: skip
    assert done.ended == 7 and clock.now == 0.0


@pytest.fixture
def server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A listener at ADDRESS that accepts and holds every connection (as a WebSocket
    server would), and the accepted sockets."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((ADDRESS, 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(2)
        for sock in accepted:
            sock.close()
        listener.close()


def connect(port: int, count: int) -> list[socket.socket]:
    """`count` connections, made one after the other on one CPU: the kernel numbers a socket's
    inode from a batch of the CPU that makes it, so inodes follow the order of making only
    within one CPU (a test thread that moved between the two cores listed them out of order)."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        return [socket.create_connection((ADDRESS, port), timeout=5) for _ in range(count)]
    finally:
        os.sched_setaffinity(0, allowed)


def ended(client: socket.socket) -> bool:
    client.setblocking(False)
    try:
        return client.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True  # aborted: what the proxy sees when its side is ended


def test_real_connections_are_listed_oldest_first_and_ended_on_the_proxy_side(
    server: tuple[int, list[socket.socket]],
) -> None:
    port, _ = server
    clients = connect(port, 6)
    try:
        found = held(ADDRESS, (port,))
        mine = ["{}:{}".format(*c.getsockname()) for c in clients]
        assert [c.proxy_end for c in found] == mine, "ordered as they were made"
        assert {c.to for c in found} == {f"{ADDRESS}:{port}"}
        assert held("127.0.0.3", (port,)) == [], "another address holds none of them"

        clock = Clock()
        gone: list[list[bool]] = []

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            gone.append([ended(c) for c in clients])

        done = spread(ADDRESS, (port,), 1.0, clock=clock, sleep=sleep)
        assert (done.found, done.ended) == (6, 6)
        assert all(ended(c) for c in clients)
        assert held(ADDRESS, (port,)) == []
        halfway = gone[len(gone) // 2]
        assert halfway[0] and not halfway[-1], f"oldest first: {halfway}"
    finally:
        for client in clients:
            client.close()


def test_a_drain_asked_to_hurry_hands_over_at_once_and_signals_the_app_first(
    server: tuple[int, list[socket.socket]],
) -> None:
    """A later deploy past the bound on leaving slots (or a destroy) sets the watch's
    `early`: the drain stops waiting for its hours-long timeout and hands over now."""
    port, _ = server
    clients = connect(port, 3)
    signalled: list[bool] = []
    watch = Watch("temps-app-v1", "v1", serves=True)
    outcome: list[Drained] = []

    def run() -> None:
        how = Handover(0.5, lambda: signalled.append(watch.handing_over))
        outcome.append(drain("temps-app-v1", (port,), 7200.0, ADDRESS, how, watch))

    try:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while watch.connections != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch.connections == 3 and watch.handover_at is not None
        assert watch.handover_at >= watch.since + 7200 - 1
        assert not watch.handing_over
        watch.early.set()
        thread.join(60)
        assert not thread.is_alive()
        drained = outcome[0]
        assert drained.handed_over == 3
        assert drained.complete is True
        assert signalled == [True], "the app is told once, as the handover begins"
        assert all(ended(c) for c in clients)
    finally:
        for client in clients:
            client.close()


def test_many_real_connections_are_ended_in_batches_each_one_reported_once(
    server: tuple[int, list[socket.socket]],
) -> None:
    """More connections than one `ss` call ends: every one is ended and reported; asked
    again, none is (the kernel ended nothing)."""
    port, _ = server
    clients = connect(port, handover.BATCH * 2 + 5)
    try:
        found = held(ADDRESS, (port,))
        assert len(found) == len(clients)
        assert sorted(handover.end(found)) == found
        assert all(ended(c) for c in clients)
        assert held(ADDRESS, (port,)) == []
        assert handover.end(found) == []
    finally:
        for client in clients:
            client.close()
