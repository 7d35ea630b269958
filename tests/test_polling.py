"""The one polling loop: it stops as soon as its check holds, checks once more at the
deadline, and lets what the check raises through."""

from __future__ import annotations

import time

import pytest

from pipeline.polling import poll_until


def test_it_returns_as_soon_as_the_check_holds() -> None:
    calls: list[float] = []

    def third_time() -> bool:
        calls.append(time.monotonic())
        return len(calls) == 3

    assert poll_until(third_time, timeout=30.0, interval=0.01)
    assert len(calls) == 3


def test_it_gives_up_at_the_timeout_after_a_last_check() -> None:
    calls: list[float] = []
    started = time.monotonic()
    assert not poll_until(lambda: bool(calls.append(time.monotonic())), 0.2, interval=0.05)
    assert calls[-1] - started >= 0.2  # the last look is taken at the deadline, not before
    assert len(calls) >= 2


def test_a_check_that_raises_ends_the_wait() -> None:
    def broken() -> bool:
        raise RuntimeError("the process exited")

    with pytest.raises(RuntimeError, match="exited"):
        poll_until(broken, timeout=30.0, interval=0.01)
