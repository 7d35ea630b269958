"""The host side of a cluster: the bridge the nodes hang on and the registry they pull from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker

from tests.support.swarm.helpers import _free_port, _http_ok, _mark, _run
from tests.support.swarm.settings import (
    HOST_SOCKET,
    REGISTRY_BINARY,
    SwarmHarnessError,
    SwarmSettings,
    _Started,
)
from tests.support.wait import poll


def _make_bridge(settings: SwarmSettings) -> None:
    """The bridge the nodes hang on. The host's FORWARD policy is DROP (dockerd sets it) and
    bridged frames pass iptables (br_netfilter), so node-to-node traffic needs an ACCEPT."""
    bridge = settings.bridge
    _run("ip", "link", "add", bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{settings.host_addr}/24", "dev", bridge)
    _run("ip", "link", "set", bridge, "up")
    for chain, match in (("FORWARD", ["-i", bridge, "-o", bridge]), ("INPUT", ["-i", bridge])):
        tag = ["-m", "comment", "--comment", settings.comment]
        _run("iptables", "-I", chain, "1", *match, *tag, "-j", "ACCEPT")


def _start_registry(settings: SwarmSettings, home: Path, started: _Started) -> str:
    """Debian's docker-registry, run by hand on 0.0.0.0 so that the host engine reaches it on
    loopback and the nodes' forwarders reach it on the bridge address."""
    if not REGISTRY_BINARY.exists():
        raise SwarmHarnessError(f"{REGISTRY_BINARY} is missing: apt-get install docker-registry")
    port = settings.registry_port or _free_port()
    home.mkdir(parents=True)
    config = home / "config.yml"
    storage = {"filesystem": {"rootdirectory": str(home / "data")}, "delete": {"enabled": True}}
    document = {"version": 0.1, "log": {"level": "warn"}, "storage": storage}
    config.write_text(json.dumps({**document, "http": {"addr": f"0.0.0.0:{port}"}}))  # YAML
    with open(home / "registry.log", "wb") as log:
        proc = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    started.procs.append(proc)
    _mark(settings, "registry.pid", str(proc.pid))
    _mark(settings, "registry", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/v2/"
    if not poll(lambda: _http_ok(url), bool, timeout=settings.start_timeout, interval=0.1):
        raise SwarmHarnessError(f"registry did not answer on {url}: see {home / 'registry.log'}")
    return f"127.0.0.1:{port}"


def push_image(source: str, repository: str, tag: str = "latest") -> str:
    """Tag a host-engine image as `repository:tag`, push it, return `repository@sha256:...`."""
    client = docker.DockerClient(base_url=f"unix://{HOST_SOCKET}", timeout=300)
    client.images.get(source).tag(repository, tag)
    for line in client.images.push(repository, tag, stream=True, decode=True):
        if "error" in line:
            raise SwarmHarnessError(f"push of {repository}:{tag} failed: {line['error']}")
    digests = client.images.get(f"{repository}:{tag}").attrs["RepoDigests"]
    return str(next(d for d in digests if d.startswith(f"{repository}@")))
