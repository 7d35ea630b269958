"""The DIY nginx contender of bench/peers.py: Debian's nginx on a free loopback port with its
own configuration, pid and logs in a temporary directory (never the system's default site),
and bench/peers_nginx.sh as the deploy."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from common import commit_app
from peers_diy import (
    POLL_INTERVAL,
    Deployed,
    remove_run_objects,
    run_label,
    run_script,
    stop_process,
    wait_listening,
)

from tests.support.daemon import free_port

HOST = "peers.localhost"

# What the articles put in front of the app: one server, one upstream in its own file that
# each deploy rewrites. nginx speaks HTTP/1.0 to the upstream, a connection per request.
NGINX_CONF = """worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {root}/upstream.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_set_header Host $host;
        }}
    }}
}}
"""


def ensure_nginx() -> str:
    """The nginx binary; Debian's package is installed when it is missing."""
    found = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if found is None:
        print("  installing Debian's nginx (apt-get install -y nginx)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["update", "-q"], ["install", "-y", "-q", "nginx"]):
            subprocess.run(
                ["apt-get", *command],
                env=env,
                check=True,
                timeout=600,
                stdout=subprocess.DEVNULL,
            )
        found = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if found is None:
        raise RuntimeError("nginx is not installed and apt-get did not install it")
    return found


class NginxSwap:
    """The app behind nginx; each deploy swaps blue and green host ports."""

    name = "nginx"

    def __init__(self, root: Path, binary: str, drain: float) -> None:
        self.root, self.binary, self.drain = root, binary, drain
        self.port, self.blue, self.green = free_port(), free_port(), free_port()
        self.host = HOST
        self.repo = root / "repo"
        self.conf = root / "nginx.conf"
        self.error_log = root / "error.log"
        self.upstream = root / "upstream.conf"
        self.container = f"peers-nginx-{os.getpid()}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.conf.write_text(NGINX_CONF.format(root=self.root, port=self.port))
        # Nothing runs on green yet: the first deploy takes blue.
        self.upstream.write_text(f"upstream app {{ server 127.0.0.1:{self.green}; }}\n")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "-e", str(self.error_log), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_listening(self.port)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGQUIT)  # graceful: workers finish what they have

    def deploy(self, version: str, near_switch: Callable[[], None]) -> Deployed:
        commit_app(self.repo, version)

        def on_step(step: str) -> None:
            if step == "booted":  # the health poll begins; the reload follows it
                near_switch()

        return run_script(
            "peers_nginx.sh",
            [
                str(self.repo),
                f"temps-peers/nginx-{os.getpid()}:{version}",
                self.container,
                str(self.blue),
                str(self.green),
                str(self.upstream),
                str(self.conf),
                str(self.error_log),
            ],
            on_step,
            {
                "LABEL": run_label(),
                "HEALTH_INTERVAL": f"{POLL_INTERVAL:g}",
                "DRAIN_SECONDS": f"{self.drain:g}",
            },
        )


@contextlib.contextmanager
def nginx_swap(drain: float) -> Iterator[NginxSwap]:
    """nginx started for the bench and stopped after it, with every container it fronted;
    `drain` is the script's sleep between the reload and the old container's stop."""
    binary = ensure_nginx()
    root = Path(tempfile.mkdtemp(prefix="temps-peers-nginx-"))
    swap = NginxSwap(root, binary, drain)
    try:
        swap.start()
        yield swap
    finally:
        swap.stop()
        remove_run_objects(run_label())
        shutil.rmtree(root, ignore_errors=True)
