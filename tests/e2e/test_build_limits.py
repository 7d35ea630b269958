"""End to end: a build runs with the CPU weight and memory the daemon's settings give it.

The engine is asked, not the daemon: a `RUN` step prints the limits of its own cgroup into
the build log, and the home's build cgroup, which all its builds share and which the apps'
containers compete with, carries the weight.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.checks import push_ok
from tests.support.daemon import TempsDaemon, home_id_of

pytestmark = pytest.mark.docker

CPU_SHARES = 10
MEMORY_MB = 300
TEMPS_SERVE_ARGS = ["--build-cpu-shares", str(CPU_SHARES), "--build-memory-mb", str(MEMORY_MB)]
CGROUP = Path("/sys/fs/cgroup")
# What a step's own cgroup says, on cgroup v1 (a directory per controller) or v2 (one tree).
PRINT_LIMITS = (
    "RUN for f in cpu/cpu.shares memory/memory.limit_in_bytes cpu.weight memory.max; do "
    'if [ -f /sys/fs/cgroup/$f ]; then echo "limit $f=$(cat /sys/fs/cgroup/$f)"; fi; done'
)


def limits_in(log: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in log:
        match = re.search(r"limit ([a-z][a-z._/]*)=(\w+)", line)  # not the step's echo
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_a_build_step_runs_with_the_configured_cpu_weight_and_memory(
    temps_daemon: TempsDaemon, tmp_path: Path
) -> None:
    app = "limits"
    temps_daemon.create_app(app)
    push_ok(temps_daemon, tmp_path / app, app, "v1", dockerfile_extra=[PRINT_LIMITS])
    limits = limits_in(temps_daemon.release(app, 1)["log"])
    memory = MEMORY_MB * 1024 * 1024
    if "cpu/cpu.shares" in limits:
        assert limits == {
            "cpu/cpu.shares": str(CPU_SHARES),
            "memory/memory.limit_in_bytes": str(memory),
        }
        shared = CGROUP / "cpu" / f"temps-build-{home_id_of(temps_daemon.home)}" / "cpu.shares"
        assert shared.read_text().strip() == str(CPU_SHARES)
    else:
        assert limits == {"cpu.weight": "1", "memory.max": str(memory)}
        shared = CGROUP / f"temps-build-{home_id_of(temps_daemon.home)}" / "cpu.weight"
        assert shared.read_text().strip() == "1"
