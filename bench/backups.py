"""backups: how fast temps backs up and verifies a 200 MB volume, against `tar` of the same
volume in a container, on the same machine, in alternated rounds.

- backup: temps' archive of the volume into a directory (the engine's tar stream of a
  helper container, written and checksummed file by file in one pass), against
  `docker run --rm -v VOL:/v IMAGE tar c /v > FILE` (the stream goes through the docker
  CLI's attach) and against GNU tar of the volume's directory on the host
  (`tar cf FILE -C /var/lib/docker/volumes/VOL/_data .`, root only, no checksums: the floor).
- verify: temps' verification (the archive's sha256, a restore into a scratch volume, every
  file read back and compared with the manifest), against `docker run -i ... tar x` of the
  same archive into a scratch volume followed by `sha256sum` of every file in it.

MB/s are of the volume's 200 MB (files, not the tar's padding).

    .venv/bin/python bench/backups.py [--runs 3] [--mb 200]
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import header, parse_args, secs, spread, summary

from pipeline.backups import verify
from pipeline.backups.directory import Directory
from pipeline.backups.manifest import Manifest
from pipeline.backups.volumes import archive
from pipeline.docker.volumes import VolumeArchives
from pipeline.runtime import Mount
from tests.support.busybox import ensure_busybox_image

PART_MB = 50


def docker(*args: str, stdin: Path | None = None, stdout: Path | None = None) -> None:
    given = stdin.open("rb") if stdin else None
    taken = stdout.open("wb") if stdout else None
    try:
        subprocess.run(
            ["docker", *args],
            stdin=given or subprocess.DEVNULL,
            stdout=taken or subprocess.DEVNULL,
            check=True,
            timeout=900,
        )
    finally:
        for stream in (given, taken):
            if stream is not None:
                stream.close()


@dataclass
class Round:
    """One round's volume, destination and scratch names."""

    run: int
    image: str
    volume: str
    home_id: str
    folder: Path
    archives: VolumeArchives
    manifest: Manifest | None = None

    @property
    def tar_file(self) -> Path:
        return self.folder / f"run-{self.run}.tar"

    @property
    def destination(self) -> Directory:
        return Directory(self.folder / f"run-{self.run}")

    def temps_backup(self) -> None:
        mount = Mount(self.volume, "/v")
        key = f"bench/{self.run}/data.tar"
        entry = archive(self.archives, self.destination, key, "data", mount, self.image)
        self.manifest = Manifest(
            kind="volumes", backup=self.run, app="bench", created_at=time.time(),
            temps_version="bench", volumes=(entry,),
        )  # fmt: skip

    def temps_verify(self) -> None:
        assert self.manifest is not None
        key = f"bench/{self.run}"
        found = verify.verify(self.manifest, self.destination, key, self.archives, self.image)
        assert not found, found

    def tar_backup(self) -> None:
        mount = f"{self.volume}:/v"
        docker("run", "--rm", "-v", mount, self.image, "tar", "c", "/v", stdout=self.tar_file)

    def host_tar_backup(self) -> None:
        mountpoint = subprocess.run(
            ["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", self.volume],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        host_file = self.folder / f"host-{self.run}.tar"
        command = ["tar", "cf", str(host_file), "-C", mountpoint, "."]
        subprocess.run(command, check=True, timeout=900)
        host_file.unlink()

    def tar_verify(self) -> None:
        scratch = f"temps-bench-{self.home_id}-scratch-{self.run}"
        docker("volume", "create", scratch)
        try:
            docker("run", "--rm", "-i", "-v", f"{scratch}:/v", self.image, "tar", "x", "-C",
                   "/", stdin=self.tar_file)  # fmt: skip
            docker("run", "--rm", "-v", f"{scratch}:/v", self.image, "sh", "-c",
                   "find /v -type f -exec sha256sum {} +")  # fmt: skip
        finally:
            docker("volume", "rm", "-f", scratch)

    def timings(self) -> dict[str, float]:
        """Backups first, in an order that turns from round to round; then the verifies."""
        pairs = [
            ("temps_backup", self.temps_backup),
            ("host_tar_backup", self.host_tar_backup),
            ("tar_backup", self.tar_backup),
        ]
        if self.run % 2:
            pairs.reverse()
        pairs += [("temps_verify", self.temps_verify), ("tar_verify", self.tar_verify)]
        seconds = {}
        for name, work in pairs:
            started = time.perf_counter()
            work()
            seconds[name] = round(time.perf_counter() - started, 3)
        shutil.rmtree(self.folder / f"run-{self.run}", ignore_errors=True)
        self.tar_file.unlink(missing_ok=True)
        return seconds


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], runs=3, mb=(int, 200, "MB in the volume"))
    report = header("backups", args)
    image = ensure_busybox_image()
    home_id = secrets.token_hex(4)
    volume = f"temps-bench-{home_id}-data"
    folder = Path(tempfile.mkdtemp(prefix="temps-bench-backups-"))
    archives = VolumeArchives(f"bench-{home_id}", home_id)
    parts = max(1, args.mb // PART_MB)
    fill = (
        f"for i in $(seq 1 {parts}); do head -c {PART_MB * 1024 * 1024} /dev/urandom "
        "> /v/part-$i; done; mkdir -p /v/sub && echo small > /v/sub/small"
    )
    size_mb = parts * PART_MB
    try:
        docker("volume", "create", volume)
        docker("run", "--rm", "-v", f"{volume}:/v", image, "sh", "-c", fill)
        for run in range(args.runs):
            record = Round(run, image, volume, home_id, folder, archives).timings()
            report.runs.append(record)
            print(f"  run {run}: {record}", flush=True)
        for name in ("temps_backup", "tar_backup", "host_tar_backup", "temps_verify", "tar_verify"):
            stats = summary([r[name] for r in report.runs])
            rate = size_mb / stats["median"]
            report.figure(name, stats, f"{name}: {spread(stats, secs)}")
            report.figure(f"{name}_mb_s", round(rate, 1), f"{name}: {rate:.0f} MB/s (median)")
        figures = report.figures
        for step in ("backup", "verify"):
            ratio = figures[f"temps_{step}"]["median"] / figures[f"tar_{step}"]["median"]
            report.figure(f"{step}_ratio", round(ratio, 2), f"{step}: temps / tar = {ratio:.2f}x")
        floor = figures["temps_backup"]["median"] / figures["host_tar_backup"]["median"]
        report.figure(
            "backup_host_ratio", round(floor, 2), f"backup: temps / host tar = {floor:.2f}x"
        )
        report.write()
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
