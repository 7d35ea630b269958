"""The slots leaving in the background (pipeline.context.Retirements): what `temps ps` lists
as leaving, the bound on how many releases of an app may hold connections at once, the
hurry a destroy asks for, and what a daemon that stops waits for."""

from __future__ import annotations

import threading
import time

from pipeline.context import Retirements
from pipeline.drain.wait import Watch


class Slot:
    """A retirement that runs until the test lets it go, or until asked to hurry."""

    def __init__(self, retirements: Retirements, app: str, release: str, serves: bool = True):
        self.watch = Watch(f"temps-{app}-{release}", release, serves)
        self.done = threading.Event()
        retirements.start(app, self.watch, self.run)

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while not self.done.is_set() and not self.watch.early.is_set():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


def test_leaving_lists_web_containers_oldest_first_and_forgets_them_once_stopped() -> None:
    retirements = Retirements()
    first = Slot(retirements, "shop", "v1")
    second = Slot(retirements, "shop", "v2")
    worker = Slot(retirements, "shop", "v2", serves=False)
    Slot(retirements, "other", "v9")
    try:
        assert [w.release for w in retirements.leaving("shop")] == ["v1", "v2"]
        first.done.set()
        assert retirements.wait("shop", 0.2) is False
        deadline = time.monotonic() + 10
        while len(retirements.leaving("shop")) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [w.release for w in retirements.leaving("shop")] == ["v2"]
    finally:
        for slot in (second, worker):
            slot.done.set()
        retirements.hurry("other")
    assert retirements.wait(None, 10)


def test_past_three_releases_the_oldest_hands_over_at_once() -> None:
    retirements = Retirements()
    slots = [Slot(retirements, "shop", f"v{n}") for n in (1, 2, 3)]
    slots.append(Slot(retirements, "shop", "v3"))  # a second container of v3
    assert not any(s.watch.early.is_set() for s in slots)
    slots.append(Slot(retirements, "shop", "v4"))
    assert slots[0].watch.early.is_set(), "v1, the oldest, hands over"
    assert not any(s.watch.early.is_set() for s in slots[1:])
    Slot(retirements, "shop", "v5", serves=False)  # a worker holds no connection
    assert not slots[1].watch.early.is_set()
    retirements.hurry("shop")
    assert all(s.watch.early.is_set() for s in slots)
    assert retirements.wait("shop", 10)


def test_a_stopping_daemon_does_not_wait_for_slots_that_hold_long_lived_connections() -> None:
    retirements = Retirements()
    holding, busy = Slot(retirements, "shop", "v1"), Slot(retirements, "shop", "v2")
    holding.watch.holding = True
    started = time.monotonic()
    assert retirements.wait(None, 0.5, holding_too=False) is False, "v2 is still busy"
    busy.done.set()
    assert retirements.wait(None, 10, holding_too=False) is True
    assert time.monotonic() - started < 10
    assert retirements.wait(None, 0.2) is False, "v1 still runs: waited for by default"
    holding.done.set()
    assert retirements.wait(None, 10)
