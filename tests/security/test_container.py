"""What dockerd was told for an app container, read back with `docker inspect`, and what the
app process sees from inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import TempsDaemon, container_name
from tests.support.dockercli import docker
from tests.support.liveapp import deploy_v1

pytestmark = pytest.mark.docker

NNP_CMD = 'grep NoNewPrivs /proc/self/status > /www/nnp.txt; exec httpd -f -p "$PORT" -h /www'
RESOURCES = {"memory_mb": 96, "cpus": 0.5, "pids": 64}


@pytest.mark.parametrize("resources", [RESOURCES, None], ids=["resources-set", "defaults"])
def test_the_container_runs_unprivileged_within_its_limits(
    daemon: TempsDaemon, tmp_path: Path, resources: dict[str, Any] | None
) -> None:
    app = "boxed" if resources else "boxed-defaults"
    settings = {"resources": resources} if resources else {}
    deploy_v1(daemon, tmp_path / app, app, cmd=NNP_CMD, settings=settings)
    memory_mb = resources["memory_mb"] if resources else 1024
    cpus = resources["cpus"] if resources else 1.0
    pids = resources["pids"] if resources else 4096

    info = json.loads(docker("inspect", container_name(app, 1)))[0]
    host = info["HostConfig"]
    assert host["Privileged"] is False
    assert any(o.startswith("no-new-privileges") for o in host["SecurityOpt"] or []), host
    assert host["Memory"] == memory_mb * 1024 * 1024, host["Memory"]
    assert host["MemorySwap"] == memory_mb * 1024 * 1024, host["MemorySwap"]
    assert host["NanoCpus"] == int(cpus * 1e9), host["NanoCpus"]
    assert host["PidsLimit"] == pids, host["PidsLimit"]
    assert not host["Binds"] and not host.get("Mounts") and not info["Mounts"], info["Mounts"]
    assert not host["CapAdd"] and not host["Devices"], (host["CapAdd"], host["Devices"])
    dropped = {cap.removeprefix("CAP_") for cap in host["CapDrop"] or []}
    assert {"NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP"} <= dropped, host["CapDrop"]
    for mode in ("NetworkMode", "PidMode", "IpcMode", "UsernsMode"):
        assert host[mode] != "host", f"{mode} {host[mode]}"
    assert "docker.sock" not in json.dumps(info)
    # Nothing published on the host: Traefik reaches it on the home's bridge.
    bound = [b for bs in (host["PortBindings"] or {}).values() for b in bs]
    published = [b for bs in info["NetworkSettings"]["Ports"].values() for b in bs or []]
    assert not bound and not published, (bound, published)
    # And from inside: the kernel's view of the app process.
    inside = daemon.get_app_page(app, "/nnp.txt")
    assert inside.status_code == 200 and inside.text.split() == ["NoNewPrivs:", "1"], inside.text
