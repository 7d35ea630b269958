"""Memory the daemon frees goes back to the system: glibc's allocator tuned through ctypes;
and what start-up makes is kept out of Python's cyclic collections.

glibc gives threads that allocate at once arenas of their own, up to eight per core, and
keeps what is freed in an arena for later. The daemon starts threads for every push, deploy
and drain, so over a day of deploys its RSS crept up (about 2 MiB per 100 operations in
bench/soak.py) while Python's own objects did not grow (tracemalloc showed no growth). Two
arenas, and a trim after each deploy, hold it down. No ctypes binding of a well-kept library
does this; under another C library both calls do nothing.

Start-up leaves some 190,000 objects that live as long as the daemon (modules, classes,
models, routes). Each full collection walked them all: with 500 apps one took 100-140 ms,
about every half second while the API was asked for the app list, and each was a request's
delay (GET /api/apps p95 160 ms against a median of 28). Collections wait until start-up
is done; then what it made is frozen out of every later one (`gc.freeze`), which took a
full collection to about 20 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - present in glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap the arenas threads get from now on; whether the allocator took it."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, count))


def give_back() -> None:
    """Return the free pages of every arena to the system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def hold_collections() -> None:
    """No cyclic collection until `settle`: start-up's objects are all long-lived."""
    gc.disable()


def settle() -> None:
    """Once started: what exists now is left out of every later collection, and
    collections run again."""
    gc.freeze()
    gc.enable()
