"""`temps serve` raises its soft limit of open files to the hard one before it serves: a push
opens every pack of its repository, and a service starts at 1,024."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
from receiver.cli.serve import raise_open_files_limit
raise_open_files_limit()
print(*resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def test_the_soft_limit_of_open_files_is_raised_to_the_hard_one() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    soft, hard = (int(word) for word in done.stdout.split())
    assert hard > 256, "the hard limit leaves nothing to raise"
    assert soft == hard, done.stdout
