"""Base images for the builders' tests, made on this machine from Debian's packages.

Nothing may be pulled from a public registry here, so the images the generated Dockerfiles
build on are made the way a distribution makes its own: `debootstrap --variant=minbase` of
bookworm once, then one copy of that root per stack with the stack's packages installed in a
chroot, each imported with `docker import` under the name the daemon's settings give it
(`STACK_IMAGES`, passed as `--base-images`). Each image is made once per machine and kept by
its tag; a file lock serialises the test workers that ask at the same time.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.dockercli import docker, image_exists

MIRROR = "http://deb.debian.org/debian"
LOCK = Path(tempfile.gettempdir()) / "temps-test-stacks.lock"
DEBIAN = "temps-test/debian:bookworm"
# Image role (as --base-images names it) -> (tag, Debian packages on top of minbase).
IMAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "python": ("temps-test/python:3.11-bookworm", ("python3", "python3-pip", "python3-venv")),
    "node": ("temps-test/node:18-bookworm", ("nodejs", "npm")),
    "go": ("temps-test/golang:1.19-bookworm", ("golang-go", "ca-certificates")),
    "go-runtime": (DEBIAN, ()),
    "static": ("temps-test/caddy:2.6-bookworm", ("caddy",)),
}
# What a daemon under test is given: `temps serve --base-images <this>`.
STACK_IMAGES = ",".join(f"{role}={tag}" for role, (tag, _) in IMAGES.items())


def ensure_stack_images(
    images: dict[str, tuple[str, tuple[str, ...]]] | None = None,
) -> dict[str, str]:
    """Every role's image, made now if missing; role -> tag."""
    wanted = IMAGES if images is None else images
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = {tag: packages for tag, packages in wanted.values() if not image_exists(tag)}
        if missing:
            _make(missing)
    return {role: tag for role, (tag, _) in wanted.items()}


def _make(missing: dict[str, tuple[str, ...]]) -> None:
    with tempfile.TemporaryDirectory(prefix="temps-stacks-") as scratch:
        base = Path(scratch) / "minbase"
        _run(["debootstrap", "--variant=minbase", "bookworm", str(base), MIRROR], 1200)
        _apt(base, "clean")  # the packages it downloaded
        for tag in [tag for tag, packages in missing.items() if not packages]:
            _import(base, tag)
        stacks = {tag: packages for tag, packages in missing.items() if packages}
        if not stacks:
            return
        resolv = base / "etc" / "resolv.conf"
        resolv.unlink(missing_ok=True)  # a link would lead the copy out of the root
        shutil.copy2("/etc/resolv.conf", resolv)
        _apt(base, "update")  # once, for every copy
        # Two at a time: each is mostly waiting on the network and the disk.
        with ThreadPoolExecutor(max_workers=2) as pool:
            made = [pool.submit(_stack, base, Path(scratch), tag, p) for tag, p in stacks.items()]
            for done in made:
                done.result()


def _stack(base: Path, scratch: Path, tag: str, packages: tuple[str, ...]) -> None:
    root = scratch / tag.replace("/", "_")
    _run(["cp", "-a", str(base), str(root)], 600)
    # No service is started inside the chroot (caddy's package would start its own).
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    _apt(root, "install", "--no-install-recommends", *packages)
    _apt(root, "clean")
    policy.unlink()
    for lists in (root / "var" / "lib" / "apt" / "lists").glob("*_*"):
        lists.unlink()
    _import(root, tag)
    shutil.rmtree(root, ignore_errors=True)


def _apt(root: Path, *args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    _run(["chroot", str(root), "apt-get", "-q", "-y", *args], 1200, env)


def _import(root: Path, tag: str) -> None:
    tar = subprocess.Popen(
        ["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
    )
    assert tar.stdout is not None
    done = subprocess.run(
        ["docker", "import", "--change", 'CMD ["/bin/sh"]', "-", tag],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    tar.stdout.close()
    if tar.wait(timeout=60) != 0 or done.returncode != 0:
        raise RuntimeError(f"docker import {tag} failed: {done.stderr.strip()}")
    check = docker("run", "--rm", tag, "/bin/sh", "-c", "echo stack-ok", timeout=120)
    if "stack-ok" not in check:
        raise RuntimeError(f"{tag} does not run: {check!r}")


def _run(command: list[str], timeout: float, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n" + "\n".join(tail))


def cold_copy(tag: str, label: str) -> str:
    """`tag` under a new image ID (a label of its own), which no layer of the build cache
    descends from: a build on it is a first build. Remove it with `remove_image`."""
    copy = f"temps-test/cold:{label}"
    subprocess.run(
        ["docker", "build", "-q", "-t", copy, "-"],
        input=f"FROM {tag}\nLABEL temps.test.cold={label}\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return copy


def remove_image(tag: str) -> None:
    docker("rmi", tag, check=False)
