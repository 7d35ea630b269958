"""What the do-it-yourself contenders of bench/peers.py share: the record of one deploy, the
runner of a deploy script, a wait for the proxy to serve a version, and the clean-up of what
the scripts left in Docker.

Each DIY deploy is a bash script beside this file, written the way the articles write it;
it prints `step <name> <epoch seconds>` as it goes, so the bench can time its steps without
changing what it does.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.dockercli import docker, lines, remove_containers_labelled

STOP_SECONDS = 15.0

BENCH_DIR = Path(__file__).resolve().parent
SCRIPT_TIMEOUT = 300.0
# Every container and image a DIY contender makes carries this label, and nothing else does.
LABEL_KEY = "temps-peers"
# The health poll's spacing (the nginx script's curl loop, Docker's HEALTHCHECK interval):
# temps' default probe interval, so no contender is slower only because it waits longer
# between two probes. They pass on one answer, as those tools do; temps' gate wants three.
POLL_INTERVAL = 0.2


@dataclass
class Deployed:
    """One deploy as its trigger saw it; `started` is the trigger (epoch seconds)."""

    ok: bool
    started: float
    finished: float
    detail: str = ""
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds after `started`


def run_label() -> str:
    return f"{LABEL_KEY}={os.getpid()}"


def run_script(
    script: str, args: list[str], on_step: Callable[[str], None], env: dict[str, str]
) -> Deployed:
    """Run `bench/<script>` with `args`, calling `on_step(name)` at each of its step lines."""
    started = time.time()
    process = subprocess.Popen(
        ["bash", str(BENCH_DIR / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    assert process.stdout is not None
    timer = threading.Timer(SCRIPT_TIMEOUT, process.kill)
    timer.start()
    steps: dict[str, float] = {}
    other: list[str] = []
    try:
        for line in process.stdout:
            fields = line.split()
            if len(fields) == 3 and fields[0] == "step":
                steps[fields[1]] = round(float(fields[2]) - started, 3)
                on_step(fields[1])
            elif line.strip():
                other.append(line.strip())
        code = process.wait()
    finally:
        timer.cancel()
    detail = "" if code == 0 else f"exit {code}: " + " | ".join(other[-5:])
    return Deployed(code == 0, started, time.time(), detail, steps)


def answer(port: int, host: str, timeout: float = 2.0) -> str:
    """The body of one GET / through the proxy on a new connection, or why there is none."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace").strip()
        return body if response.status == 200 else f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def wait_serving(
    port: int, host: str, version: str, in_a_row: int = 1, timeout: float = 60.0
) -> float | None:
    """Until the proxy answers `version` `in_a_row` times running, on new connections 50 ms
    apart: a proxy may still be catching up when its deploy says it is done. Returns the
    seconds it took, None if it did not happen within `timeout`."""
    began = time.monotonic()
    running = 0
    while running < in_a_row:
        if time.monotonic() - began > timeout:
            return None
        running = running + 1 if answer(port, host) == f"version {version}" else 0
        if running < in_a_row:
            time.sleep(0.05)
    return time.monotonic() - began


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


def remove_run_objects(label: str) -> None:
    """Every container, then every image, with this run's label."""
    remove_containers_labelled(label)
    images = lines(docker("images", "-q", "--filter", f"label={label}", check=False))
    if images:
        docker("rmi", "-f", *sorted(set(images)), check=False)


def stop_process(process: subprocess.Popen[bytes] | None, stop_signal: int) -> None:
    """Ask a proxy to stop with `stop_signal`, then kill it if it has not after 15 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_SECONDS)
