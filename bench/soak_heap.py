"""bench/soak.py --heaptrack: the daemon's live heap through the run, what it has allocated and
not yet freed, as opposed to its RSS, which also counts what the allocators keep after
freeing (the soak section of BENCHMARKS.md).

The daemon runs with heaptrack's preload library (Debian's `heaptrack` package), which
records every malloc and free, and with PYTHONMALLOC=malloc, so Python's small objects go
through malloc and are recorded too instead of living in Python's own arenas. After the run
`heaptrack_interpret` turns the record into allocations and frees over time; each sample of
the run gets the bytes live at its time. Both slow the daemon and change how its memory is
laid out: the RSS of such a run is not comparable with one without.
"""

from __future__ import annotations

import bisect
import os
import subprocess
from pathlib import Path
from typing import Any

PRELOAD = Path("/usr/lib/heaptrack/libheaptrack_preload.so")
INTERPRET = Path("/usr/lib/heaptrack/libexec/heaptrack_interpret")
STEP_MS = 500  # the timeline keeps one point per half second


def traced_env(record: Path) -> dict[str, str]:
    """The daemon's environment additions. The library removes both of its variables from the
    environment as it starts, so the daemon's children (git, hooks, Docker's CLI) are not
    traced into the same file."""
    missing = [str(path) for path in (PRELOAD, INTERPRET) if not path.exists()]
    if missing:
        raise SystemExit(f"--heaptrack needs heaptrack (apt-get install -y heaptrack): {missing}")
    return {
        "LD_PRELOAD": str(PRELOAD),
        "DUMP_HEAPTRACK_OUTPUT": str(record),
        "PYTHONMALLOC": "malloc",
    }


def started_at(pid: int) -> float:
    """When a process started, in seconds since the epoch (the record's times count from it)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def live_timeline(record: Path, started: float) -> list[tuple[float, int]]:
    """(time since the epoch, bytes allocated and not freed), every STEP_MS of the record.

    heaptrack_interpret writes `a <size> <trace>` for each distinct allocation, `+ <index>`
    and `- <index>` as one is made and freed, and `c <ms>` as time passes (hex numbers)."""
    sizes: list[int] = []
    live, last, timeline = 0, -1, []
    with record.open("rb") as raw:
        interpret = subprocess.Popen(
            [str(INTERPRET)], stdin=raw, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert interpret.stdout is not None
        for line in interpret.stdout:
            kind = line[:1]
            if kind == b"+":
                live += sizes[int(line[2:], 16)]
            elif kind == b"-":
                live -= sizes[int(line[2:], 16)]
            elif kind == b"a":
                sizes.append(int(line.split()[1], 16))
            elif kind == b"c":
                step = int(line[2:], 16) // STEP_MS
                if step != last:
                    timeline.append((started + step * STEP_MS / 1000, live))
                    last = step
        interpret.wait()
    return timeline


def add_heap(samples: list[dict[str, Any]], timeline: list[tuple[float, int]]) -> None:
    """Each sample gets `daemon_heap_mib`, the live heap at its time."""
    times = [when for when, _ in timeline]
    for sample in samples:
        index = bisect.bisect_right(times, sample["at"]) - 1
        if index >= 0:
            sample["daemon_heap_mib"] = timeline[index][1] / 2**20
