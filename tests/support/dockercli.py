"""The few docker CLI calls the tests make, so they read as assertions, not plumbing."""

from __future__ import annotations

import json
import subprocess


def docker(*args: str, timeout: float = 120.0, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def on_bridge(name: str) -> tuple[str, str]:
    """The container's address on its home's bridge (`temps-<home id>`) and its endpoint there
    (new at each start, shortened as temps records it); ("", "") while it is not running."""
    out = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", name, check=False)
    networks = json.loads(out or "{}") or {}
    found = [v for k, v in networks.items() if k.startswith("temps-")]
    if not found or not found[0].get("IPAddress"):
        return "", ""
    return str(found[0]["IPAddress"]), str(found[0].get("EndpointID") or "")[:12]


def image_exists(ref: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, timeout=60, check=False
        ).returncode
        == 0
    )


def container_names(*filters: str, include_stopped: bool = True) -> list[str]:
    args = ["ps", "--format", "{{.Names}}"]
    if include_stopped:
        args.append("-a")
    for item in filters:
        args += ["--filter", item]
    return sorted(lines(docker(*args)))


def app_images(app: str) -> list[str]:
    """`repository:tag` of every image of the app (`docker images temps/<app>`)."""
    out = docker("images", f"temps/{app}", "--format", "{{.Repository}}:{{.Tag}}")
    return sorted(lines(out))


def remove_containers_labelled(label: str) -> None:
    ids = lines(docker("ps", "-aq", "--filter", f"label={label}", check=False))
    # A few at a time: one `docker rm` of 500 containers outlasted its timeout.
    for start in range(0, len(ids), 50):
        docker("rm", "-f", *ids[start : start + 50], check=False)


def remove_networks_labelled(label: str) -> None:
    ids = lines(docker("network", "ls", "-q", "--filter", f"label={label}", check=False))
    if ids:
        docker("network", "rm", *ids, check=False)


def remove_app_images(app: str, home_id: str | None = None) -> None:
    """Remove the app's image tags: all of them, or one home's (ending in `-<home_id>`)."""
    refs = [ref for ref in app_images(app) if home_id is None or ref.endswith(f"-{home_id}")]
    if refs:
        docker("rmi", "-f", *refs, check=False)
