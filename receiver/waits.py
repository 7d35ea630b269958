"""Long waits on threads of their own, so that they never starve the API and git.

Following a release log or `?wait=true` blocks a thread on the journal for seconds to
minutes. On Starlette's shared thread pool (40 threads) 40 followers were enough to stall
every other request, git pushes included. They wait here instead, in a limiter of their own;
past its size a new wait is queued, while the API keeps its pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")
WAITERS = 400

_limiter = anyio.CapacityLimiter(WAITERS)


async def waiting(function: Callable[..., T], *args: object) -> T:
    """Run a blocking wait on one of the waiting threads."""
    return await anyio.to_thread.run_sync(function, *args, limiter=_limiter)


async def abandoned_on_cancel(function: Callable[..., T], *args: object) -> T:
    """`waiting`, but a cancelled caller goes on at once and leaves the thread to finish on
    its own: for a read that only ends when its socket is shut, by the caller's own clean-up."""
    return await anyio.to_thread.run_sync(function, *args, limiter=_limiter, abandon_on_cancel=True)
