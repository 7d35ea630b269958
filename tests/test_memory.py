"""The daemon's allocator settings, checked in a fresh interpreter against glibc itself:
with the arenas capped, threads allocating at once share two heaps instead of one each, as
glibc's own malloc_info report counts them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import ctypes, ctypes.util, sys, threading
from pipeline import memory
if sys.argv[1] == "capped":
    assert memory.limit_arenas()
start = threading.Barrier(12)
def allocate():
    start.wait()
    kept = [bytearray(2048) for _ in range(2000)]
    start.wait()
threads = [threading.Thread(target=allocate) for _ in range(12)]
for thread in threads: thread.start()
for thread in threads: thread.join()
memory.give_back()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
report = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
print(open(sys.argv[2]).read().count("<heap nr="))
"""


def heaps(tmp: str, mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode, tmp],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout)


def test_threads_share_two_arenas_once_capped(tmp_path: Path) -> None:
    report = f"{tmp_path}/malloc-info.xml"
    assert heaps(report, "capped") <= 2
    assert heaps(report, "default") > 2, "the probe makes no more arenas than the cap anyway"


SETTLE = """
import gc
from pipeline import memory
memory.hold_collections()
assert not gc.isenabled()
kept = [[index] for index in range(50_000)]  # start-up's long-lived objects
memory.settle()
assert gc.isenabled()
frozen = gc.get_freeze_count()
assert frozen >= 50_000, frozen
print(frozen)
"""


def test_start_up_objects_are_frozen_out_of_later_collections() -> None:
    """Collections wait for start-up, then what it made is out of the collector's walks."""
    done = subprocess.run(
        [sys.executable, "-c", SETTLE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 50_000
