"""Killing the Traefik that serves an app, and how long until the app is served again: what the
fault tests check comes back, and what bench/recovery.py times."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.support.daemon import TempsDaemon
from tests.support.wait import poll


def pid_gone(pid: int) -> bool:
    """Exited (a zombie counts: it holds no socket any more)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def traefik_outage(
    daemon: TempsDaemon, app: str, timeout: float = 30.0
) -> tuple[float, dict[int, int]]:
    """SIGKILL the managed Traefik: (seconds until a 2xx comes back through it, how many of
    each other status were answered before that).

    Probes every 20 ms on a fresh connection each, from the moment the process is gone.
    """
    pid = daemon.traefik_pid()
    assert pid is not None, "no traefik.pid"
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    gone = poll(lambda: pid_gone(pid), bool, timeout=5, interval=0.005)
    assert gone, f"Traefik {pid} survived SIGKILL"
    not_2xx: Counter[int] = Counter()
    headers = {"Host": f"{app}.{daemon.domain}", "Connection": "close"}
    while time.monotonic() - killed < timeout:
        try:
            response = httpx.get(f"{daemon.http_url}/", headers=headers, timeout=1.0)
        except httpx.HTTPError:
            response = None
        if response is not None:
            if response.is_success:
                return time.monotonic() - killed, dict(not_2xx)
            not_2xx[response.status_code] += 1
        time.sleep(0.02)
    raise AssertionError(f"no 2xx through Traefik within {timeout:g} s of killing it")
