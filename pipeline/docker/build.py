"""Image builds on the Docker engine: fenced in memory, processes and CPU, cancelled on timeout.

The SDK's build call takes neither a cgroup parent nor a way to stop a build, so the Engine
API's `POST /build` is sent through the SDK's own HTTP session instead. Every step's
container is placed under the cgroup `temps-build-<home>/<build>`: the daemon caps all its
builds together there at `fence_builds`' process count, so a fork bomb in a `RUN` step stops
at it instead of taking the host's last pid, and gives them together a low CPU weight, so a
build takes the CPU the live apps leave. The weight must sit on that shared cgroup: one given
to a step's container alone weighs it against nothing, the only child of its build's cgroup.
A build over its timeout is cancelled by killing the step that runs (the only container under
its cgroup), so it neither goes on in the engine nor tags an image later. The steps a failed
build completed are removed: they are untagged images nothing else would prune (once no
build runs: pipeline.docker.removals).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import structlog

from pipeline.docker.removals import HeldRemovals
from pipeline.errors import BuildFailed, LayerGone, RuntimeUnavailable
from pipeline.runtime import ImageBuild

log = structlog.get_logger()
Output = Callable[[str], None]

CGROUP = "temps-build-{home}"
CGROUP_ROOT = Path("/sys/fs/cgroup")
HEX = frozenset("0123456789abcdef")


def fence_builds(home: str, max_pids: int, cpu_shares: int = 0, root: Path = CGROUP_ROOT) -> bool:
    """Cap the processes of every build of this home together at `max_pids` and weigh their
    CPU at `cpu_shares` (Docker's scale: 1024 is a container's default; 0 leaves both alone);
    False where the host's cgroups cannot be written (not root, another layout): builds then
    run without."""
    name = CGROUP.format(home=home)
    limits = _cgroup_files(max_pids, cpu_shares, v1=(root / "pids").is_dir())
    try:
        for controller, (filename, value) in limits.items():
            if (root / "pids").is_dir():
                target = root / controller / name
            else:
                # cgroup v2: one tree, where the parent must hand each controller down
                target = root / name
                (root / "cgroup.subtree_control").write_text(f"+{controller}")
            target.mkdir(exist_ok=True)
            (target / filename).write_text(f"{value}\n")
    except OSError as exc:
        log.warning("build.not_fenced", error=str(exc))
        return False
    return True


def _cgroup_files(max_pids: int, cpu_shares: int, v1: bool) -> dict[str, tuple[str, int]]:
    """Controller -> (file, value) that set the build cgroup's limits."""
    files: dict[str, tuple[str, int]] = {}
    if max_pids:
        files["pids"] = ("pids.max", max_pids)
    if cpu_shares:
        files["cpu"] = ("cpu.shares", cpu_shares) if v1 else ("cpu.weight", weight_of(cpu_shares))
    return files


def weight_of(shares: int) -> int:
    """cgroup v2's `cpu.weight` (1-10000) for Docker's CPU shares (2-262144), as runc maps
    them: the default 1024 is 39, the least share 1."""
    shares = min(max(shares, 2), 262144)
    return 1 + (shares - 2) * 9999 // 262142


def build(
    client: docker.DockerClient,
    home: str,
    image: ImageBuild,
    removals: HeldRemovals,
) -> None:
    """Build the image's context and tag it; BuildFailed with the reason if it does not. The
    steps of a failed build are removed through `removals` (once no build runs)."""
    tag, output, timeout = image.tag, image.output, image.timeout
    parent = f"/{CGROUP.format(home=home)}/{uuid.uuid4().hex[:12]}"
    with _engine_errors():
        response = _request(client, image, parent)
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            _follow(client, response, output, removals)
        except BaseException as exc:  # handed to the waiting thread below
            failure.append(exc)

    worker = threading.Thread(target=consume, name=f"build-{tag}", daemon=True)
    worker.start()
    try:
        worker.join(timeout)
        if worker.is_alive():
            _cancel(client, parent)
            response.close()
            worker.join(10)
            raise BuildFailed(f"build took longer than the build timeout of {timeout:g}s; stopped")
        if failure:
            raise failure[0]
    finally:
        remove_cgroup(parent)


def remove_cgroup(relative: str, root: Path = CGROUP_ROOT) -> None:
    """Docker removes each step's cgroup, not the build's own: an empty directory per build
    and controller, left behind otherwise."""
    controllers = [path for path in root.iterdir() if path.is_dir()] if root.is_dir() else []
    for base in [root, *controllers]:
        with contextlib.suppress(OSError):
            (base / relative.lstrip("/")).rmdir()


def _request(client: docker.DockerClient, image: ImageBuild, parent: str) -> requests.Response:
    api = client.api
    params: dict[str, str | int] = {
        "t": image.tag,
        "labels": json.dumps(image.labels),
        "rm": 1,
        "forcerm": 1,
        "pull": 0,
        "cgroupparent": parent,
    }
    if image.memory_mb:
        params["memory"] = params["memswap"] = image.memory_mb * 1024 * 1024
    if image.cpu_shares:
        params["cpushares"] = image.cpu_shares
    response: requests.Response = api.post(
        f"{api.base_url}/v{api.api_version}/build",
        params=params,
        data=image.context,
        headers={"Content-Type": "application/x-tar"},
        stream=True,
        timeout=None,
    )
    if response.status_code != 200:
        message = response.json().get("message", response.text) if response.content else ""
        raise BuildFailed(f"build failed: {first_line(str(message))}")
    return response


def _follow(
    client: docker.DockerClient,
    response: requests.Response,
    output: Output,
    removals: HeldRemovals,
) -> None:
    last_layer = None
    with _engine_errors():
        for raw in response.iter_lines():
            if not raw.strip():
                continue
            chunk: dict[str, Any] = json.loads(raw)
            if "stream" in chunk:
                text = str(chunk["stream"])
                output(text)
                last_layer = _layer_of(text) or last_layer
            if "error" in chunk:
                message = str(chunk["error"]).strip()
                if "Cannot locate specified Dockerfile" in message:
                    message = "no Dockerfile at the root of the repository"
                removals.remove(functools.partial(_remove_layers, client, last_layer))
                if "unable to find image" in message:
                    raise LayerGone(f"build failed: {first_line(message)}")
                raise BuildFailed(f"build failed: {first_line(message)}")


def push(client: docker.DockerClient, repository: str, tag: str, output: Output) -> str:
    """Push a built image to its registry; the digest the registry gave it."""
    digest = ""
    with _engine_errors():
        try:
            for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise BuildFailed(f"push to {repository} failed: {first_line(chunk['error'])}")
                digest = str((chunk.get("aux") or {}).get("Digest") or digest)
        except docker.errors.APIError as exc:
            raise BuildFailed(
                f"push to {repository} failed: {first_line(exc.explanation)}"
            ) from exc
    if not digest:
        raise BuildFailed(f"{repository} gave no digest for {tag}")
    output(f"-----> Pushed {repository}@{digest}\n")
    return digest


def _cancel(client: docker.DockerClient, parent: str) -> None:
    """Kill the step of this build that runs now: the build ends there, failed, untagged."""
    with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
        for summary in client.api.containers(filters={"status": "running"}):
            attrs = client.api.inspect_container(summary["Id"])
            if (attrs.get("HostConfig") or {}).get("CgroupParent") == parent:
                client.api.kill(summary["Id"])
                log.info("build.cancelled", container=summary["Id"][:12])


def _remove_layers(client: docker.DockerClient, layer: str | None) -> None:
    """Remove the last step a failed build made and the untagged parents only it used
    (Docker keeps any that another image needs)."""
    if layer is None:
        return
    try:
        client.api.remove_image(layer, force=False, noprune=False)
    except docker.errors.APIError as exc:
        log.info("build.failed_layers_kept", layer=layer, reason=exc.explanation)


def _layer_of(text: str) -> str | None:
    """The image a build step made, from the classic builder's " ---> 1a2b3c4d5e6f" line."""
    line = text.strip()
    if line.startswith("---> ") and len(line) == 17 and all(c in HEX for c in line[5:]):
        return line[5:]
    return None


@contextmanager
def _engine_errors() -> Iterator[None]:
    try:
        yield
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise RuntimeUnavailable("Docker engine unavailable while trying to build") from exc


def first_line(text: str | None) -> str:
    """The first line of an engine's message that says something."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return "unknown error"
