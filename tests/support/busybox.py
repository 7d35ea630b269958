"""A tiny local base image for test apps, made from Debian's static busybox.

There is no registry to pull from here, so `FROM busybox` is out; `docker import` of a
root filesystem holding one static binary and its applet links needs nothing but dockerd.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tests.support.dockercli import docker, image_exists

BUSYBOX_IMAGE = "temps-test/busybox:latest"
BUSYBOX_BINARY = Path("/bin/busybox")
LOCK = Path(tempfile.gettempdir()) / "temps-test-busybox.lock"


def applets(binary: Path = BUSYBOX_BINARY) -> list[str]:
    out = subprocess.run(
        [str(binary), "--list"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return [name for name in out.split() if name and "/" not in name]


def make_rootfs(root: Path, binary: Path = BUSYBOX_BINARY) -> None:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(binary, bin_dir / "busybox")
    for name in applets(binary):
        if name != "busybox":
            (bin_dir / name).symlink_to("busybox")
    for name in ("tmp", "www", "etc", "proc", "sys", "dev"):
        (root / name).mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")


def import_rootfs(root: Path, ref: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        docker("import", "--change", 'CMD ["/bin/sh"]', str(archive), ref, timeout=300)


def ensure_busybox_image(ref: str = BUSYBOX_IMAGE) -> str:
    """The image, imported once even when several test workers ask at the same time."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_busybox_image(ref)


def _ensure_busybox_image(ref: str) -> str:
    if image_exists(ref):
        return ref
    if not BUSYBOX_BINARY.exists():
        raise RuntimeError(f"{BUSYBOX_BINARY} is missing: apt-get install busybox-static")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "rootfs"
        make_rootfs(root)
        import_rootfs(root, ref)
    check = docker("run", "--rm", ref, "echo", "busybox-ok", timeout=120)
    if "busybox-ok" not in check:
        raise RuntimeError(f"{ref} does not run: {check!r}")
    return ref
