"""bench/soak.py's samples: what a daemon, its Traefik, its home and Docker hold at one instant,
taken every few seconds in a thread of its own, and the trend of each figure over the run.

A sample reads /proc, walks the home and asks the docker CLI three or four short questions;
every value that cannot be read is None rather than an error, so a sample never stops the run.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.daemon import TempsDaemon, home_id_of
from tests.support.dockercli import docker, lines

# The home's parts, by what makes them grow: the records and the git history grow with every
# deploy by design, Traefik's logs with every request until their rotation caps them (4 files
# of --max-traefik-log-bytes), and the harness's capture of the daemon's stderr is not a file
# temps writes (its own --log-file is rotated). What is left should not grow at all.
RECORDS = "records"
GIT = "repos"
TRAEFIK_LOGS = "traefik_logs"
HARNESS_LOG = "harness_log"
REST = "rest"


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, its anonymous and file-backed parts (KiB) and Threads of a process, from
    /proc/<pid>/status; empty once it is gone."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            found[key] = int(value.split()[0])
    return found


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def mappings(pid: int) -> int | None:
    try:
        return len(Path(f"/proc/{pid}/maps").read_text().splitlines())
    except OSError:
        return None


def children(pid: int) -> Counter[str]:
    """The process's children by state (R, S, Z...): a zombie here is a child never reaped."""
    found: Counter[str] = Counter()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after its end.
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found[fields[0]] += 1
    return found


def part_of(home: Path, path: Path) -> str:
    relative = path.relative_to(home)
    top = relative.parts[0]
    if top.startswith("temps.db"):
        return RECORDS
    if top == "repos":
        return GIT
    if top == "traefik" and (".log" in path.name or path.name == "traefik.out"):
        return TRAEFIK_LOGS
    if top == "daemon-test.log":
        return HARNESS_LOG
    return REST


def disk_use(home: Path) -> dict[str, int]:
    """Bytes allocated under the home (st_blocks, as du counts), by part."""
    found = dict.fromkeys((RECORDS, GIT, TRAEFIK_LOGS, HARNESS_LOG, REST), 0)
    for root, _dirs, files in os.walk(home):
        for name in files:
            path = Path(root, name)
            try:
                found[part_of(home, path)] += path.lstat().st_blocks * 512
            except OSError:
                continue  # removed while walking
    return found


def file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def images(apps: list[str], home: Path) -> dict[str, int]:
    """This home's images of the apps: tagged with its id, untagged ones still labelled with
    an app (an image whose last tag went but that something still holds), and their bytes."""
    ours = f"-{home_id_of(home)}"
    tagged: set[str] = set()
    untagged: set[str] = set()
    for app in apps:
        query = ["images", "-a", "--no-trunc", "--filter", f"label=temps.app={app}"]
        rows = docker(*query, "--format", "{{.ID}}\t{{.Tag}}")
        for row in lines(rows):
            image, _, tag = row.partition("\t")
            if tag.endswith(ours):
                tagged.add(image)
            elif tag == "<none>":
                untagged.add(image)
    sizes = docker("image", "inspect", "--format", "{{.Size}}", *tagged) if tagged else ""
    return {
        "tagged": len(tagged),
        "untagged": len(untagged),
        "bytes": sum(int(size) for size in lines(sizes)),
    }


def containers(home: Path) -> Counter[str]:
    """The home's containers by Docker state (running, exited, created...)."""
    rows = docker(
        "ps", "-a", "--filter", f"label=temps.home={home.resolve()}", "--format", "{{.State}}"
    )
    return Counter(lines(rows))


def series_store(db: Path) -> dict[str, Any]:
    """The apps' traffic series as stored (pipeline.series): buckets kept, the oldest's age in
    seconds; read-only, beside the daemon's own writes."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            rows, oldest = c.execute("SELECT COUNT(*), MIN(at) FROM series_buckets").fetchone()
    except sqlite3.Error as exc:
        return {"error": str(exc)[:200]}
    return {"buckets": rows, "oldest_seconds": time.time() - oldest if oldest else None}


def take(daemon: TempsDaemon, apps: list[str], done: int) -> dict[str, Any]:
    """One sample; `done` is how many operations had finished when it began."""
    assert daemon.process is not None
    pid = daemon.process.pid
    sample: dict[str, Any] = {"at": time.time(), "done": done}
    status = proc_status(pid)
    sample["daemon_rss_mib"] = status["VmRSS"] / 1024 if "VmRSS" in status else None
    # Where it is: the heap (anonymous) or mapped files, such as a pack index left mapped.
    sample["daemon_anon_mib"] = status["RssAnon"] / 1024 if "RssAnon" in status else None
    sample["daemon_file_mib"] = status["RssFile"] / 1024 if "RssFile" in status else None
    sample["daemon_mappings"] = mappings(pid)
    sample["daemon_threads"] = status.get("Threads")
    sample["daemon_fds"] = open_fds(pid)
    sample["daemon_children"] = dict(children(pid))
    proxy = daemon.traefik_pid()
    proxy_status = proc_status(proxy) if proxy else {}
    sample["traefik_rss_mib"] = proxy_status["VmRSS"] / 1024 if "VmRSS" in proxy_status else None
    sample["traefik_fds"] = open_fds(proxy) if proxy else None
    # The WAL grows to about 4 MB between checkpoints whatever the records hold: apart.
    sample["sqlite_bytes"] = file_size(daemon.home / "temps.db")
    sample["series"] = series_store(daemon.home / "temps.db")
    sample["sqlite_wal_bytes"] = file_size(daemon.home / "temps.db-wal")
    parts = disk_use(daemon.home)
    sample["home_bytes"] = sum(parts.values())
    sample["git_packs"] = len(list(daemon.home.glob("repos/*.git/objects/pack/*.pack")))
    sample["home_parts"] = parts
    try:
        sample["images"] = images(apps, daemon.home)
        sample["containers"] = dict(containers(daemon.home))
    except (RuntimeError, OSError, ValueError) as exc:  # dockerd busy: the next sample asks
        sample["docker_error"] = str(exc)[:300]
    return sample


class Sampler:
    """`take` every `every` seconds until stop(), or `max_seconds`; `done()` says how many
    operations have finished. `samples` grows as it goes, `extra()` adds one out of turn."""

    def __init__(
        self,
        daemon: TempsDaemon,
        apps: list[str],
        done: Callable[[], int],
        every: float,
        max_seconds: float,
    ) -> None:
        self.daemon, self.apps, self.done = daemon, apps, done
        self.every, self.max_seconds = every, max_seconds
        self.samples: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(60)
        return self.samples

    def extra(self, label: str) -> dict[str, Any]:
        sample = {**take(self.daemon, self.apps, self.done()), "label": label}
        with self._lock:
            self.samples.append(sample)
        return sample

    def latest(self) -> dict[str, Any]:
        with self._lock:
            return self.samples[-1] if self.samples else {}

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            sample = take(self.daemon, self.apps, self.done())
            with self._lock:
                self.samples.append(sample)
            self._stop.wait(self.every)
