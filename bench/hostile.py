"""hostile: what an app or a pusher that misbehaves costs the daemon.

Each attack gets a daemon of its own (so that its peak RSS, VmHWM, is the attack's), with a
good v1 live, and its own temporary directory, whose size is sampled every 100 ms:

- blob: a push of a few hundred KB carrying a 400 MB file of zeros;
- large: a push carrying a 90 MB file, under the object limit: it deploys, and its build
  context streams to Docker without a copy on disk;
- dribble: a health endpoint that sends a header every 0.3 s for ever (deadline 4 s,
  timeout 1 s): how far past its deadline the gate ends;
- endless: a health endpoint answering 200 with a body without end;
- followers: 40 clients following the log of a deploy whose build takes 8 s, while the API
  is asked for the app list every 100 ms: the slowest answer;
- forks: a build step starting 2,000 processes, with the build fence at 300.

    .venv/bin/python bench/hostile.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from common import (
    REPO_ROOT,
    Report,
    TempsDaemon,
    ensure_busybox_image,
    header,
    parse_args,
    rss_mb,
)

from tests.support.apprepo import git_push, make_app_repo

RSS_TARGET_MB = 250
GATE = {"path": "/cgi-bin/health", "interval": 0.2, "timeout": 1.0, "deadline": 4}
DRIBBLE = r"""printf 'Content-Type: text/plain\r\n'
while true; do printf 'X-Drip: 1\r\n'; sleep 0.3; done
"""
ENDLESS = r"""printf 'Content-Type: text/plain\r\n\r\n'
while true; do echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done
"""
FORKS = (
    "RUN n=0; while [ $n -lt 2000 ]; do sleep 30 & n=$((n+1)); done; "
    "test $(ls /proc | grep -c '^[0-9]') -ge 2000"
)
FOLLOWERS = 40


class DiskSampler:
    """The largest size the directory reached, sampled every 100 ms while it runs."""

    def __init__(self, path: Path) -> None:
        self.path, self.peak = path, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            size = 0
            for root, _, files in os.walk(self.path):
                for name in files:
                    with suppress(OSError):  # removed between the listing and the look
                        size += os.lstat(os.path.join(root, name)).st_size
            self.peak = max(self.peak, size)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@contextmanager
def attacked(name: str, extra: list[str]) -> Iterator[tuple[TempsDaemon, Path, DiskSampler]]:
    """A daemon with v1 of app `name` live: (daemon, the app's repo, its temp dir sampler)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"temps-bench-hostile-{name}-"))
    tmp = scratch / "tmp"
    tmp.mkdir()
    daemon = TempsDaemon(
        home=scratch / "home",
        extra_args=["--auth-failures", "100000", *extra],
        env={"TMPDIR": str(tmp)},
    )
    daemon.start()
    try:
        daemon.create_app(name)
        repo = scratch / name
        make_app_repo(repo, "v1")
        code, output = git_push(repo, daemon.git_url(name))
        if code != 0:
            raise RuntimeError(f"v1 of {name} did not deploy:\n{output}")
        with DiskSampler(tmp) as disk:
            yield daemon, repo, disk
    finally:
        daemon.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def peak_mb(daemon: TempsDaemon) -> float:
    assert daemon.process is not None
    return rss_mb(daemon.process.pid)["VmHWM"]


def push_zeros(name: str, size: str) -> tuple[int, str, dict[str, Any]]:
    """Push a commit adding a file of `size` zeros (truncate's units): (exit code, git's
    output, the figures of the attack)."""
    with attacked(name, []) as (daemon, repo, disk):
        subprocess.run(["truncate", "-s", size, str(repo / "zeros.bin")], check=True)
        make_app_repo(repo, "v2")
        started = time.monotonic()
        code, output = git_push(repo, daemon.git_url(name))
        took = time.monotonic() - started
        return code, output, {"seconds": round(took, 2), "rss": peak_mb(daemon), "tmp": disk.peak}


def blob(report: Report) -> dict[str, Any]:
    code, output, found = push_zeros("blob", "400M")
    return {"refused": code != 0 and "--max-object-bytes" in output, **found}


def large(report: Report) -> dict[str, Any]:
    code, _, found = push_zeros("large", "90M")
    return {"live": code == 0, **found}


def dribble(report: Report) -> dict[str, Any]:
    patient = {**GATE, "unhealthy_threshold": 100}
    with attacked("dribble", []) as (daemon, repo, disk):
        make_app_repo(repo, "v2", settings={"healthcheck": patient}, health_cgi=DRIBBLE)
        code, _ = git_push(repo, daemon.git_url("dribble"))
        events = daemon.release("dribble", 2)["events"]
        gate = [e["at"] for e in events if e["state"] in ("health_checking", "failed")]
        over = (gate[-1] - gate[0]) - float(GATE["deadline"])
        return {
            "refused": code != 0,
            "over_deadline": round(over, 3),
            "rss": peak_mb(daemon),
            "tmp": disk.peak,
        }


def endless(report: Report) -> dict[str, Any]:
    with attacked("endless", []) as (daemon, repo, disk):
        make_app_repo(repo, "v2", settings={"healthcheck": GATE}, health_cgi=ENDLESS)
        started = time.monotonic()
        code, _ = git_push(repo, daemon.git_url("endless"))
        return {
            "live": code == 0,
            "seconds": round(time.monotonic() - started, 2),
            "rss": peak_mb(daemon),
            "tmp": disk.peak,
        }


def followers(report: Report) -> dict[str, Any]:
    with attacked("followers", []) as (daemon, repo, disk):
        make_app_repo(repo, "v2", dockerfile_extra=("RUN sleep 8",))
        pushing = threading.Thread(target=git_push, args=(repo, daemon.git_url("followers")))
        pushing.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(daemon.releases("followers")) < 2:
            time.sleep(0.05)
        url = f"{daemon.api_url}/api/apps/followers/releases/2/log?follow=true"
        headers = {"Authorization": f"Bearer {daemon.admin_token}"}
        streams = [
            subprocess.Popen(
                [
                    "curl",
                    "-sN",
                    "--max-time",
                    "60",
                    "-H",
                    f"Authorization: {headers['Authorization']}",
                    url,
                ],
                stdout=subprocess.DEVNULL,
            )
            for _ in range(FOLLOWERS)
        ]
        slowest = 0.0
        with httpx.Client(headers=headers, timeout=30) as api:
            time.sleep(1.0)
            while pushing.is_alive() and time.monotonic() < deadline:
                sent = time.monotonic()
                api.get(f"{daemon.api_url}/api/apps")
                slowest = max(slowest, time.monotonic() - sent)
                time.sleep(0.1)
        pushing.join(60)
        for stream in streams:
            stream.wait(60)
        return {"slowest_api": round(slowest, 3), "rss": peak_mb(daemon), "tmp": disk.peak}


def forks(report: Report) -> dict[str, Any]:
    with attacked("forks", ["--build-pids", "300"]) as (daemon, repo, disk):
        make_app_repo(repo, "v2", dockerfile_extra=(FORKS,))
        code, output = git_push(repo, daemon.git_url("forks"))
        return {
            "refused": code != 0 and "build failed" in output,
            "rss": peak_mb(daemon),
            "tmp": disk.peak,
        }


ATTACKS: dict[str, Callable[[Report], dict[str, Any]]] = {
    "blob": blob,
    "large": large,
    "dribble": dribble,
    "endless": endless,
    "followers": followers,
    "forks": forks,
}


def main() -> None:
    args = parse_args("what hostile apps and pushes cost the daemon", runs=1)
    report = header("hostile", args)
    ensure_busybox_image()
    results: dict[str, dict[str, Any]] = {}
    for name, attack in ATTACKS.items():
        print(f"  attack {name}", flush=True)
        found = attack(report)
        results[name] = found
        report.figure(
            name,
            found,
            f"{name}: peak RSS {found['rss']:.1f} MiB, "
            f"temp disk peak {found['tmp'] / 2**20:.1f} MiB, "
            + ", ".join(f"{k} {v}" for k, v in found.items() if k not in ("rss", "tmp")),
        )
    for name, found in results.items():
        report.verdict(
            f"{name}: peak RSS < {RSS_TARGET_MB} MB",
            found["rss"] < RSS_TARGET_MB,
            f"{found['rss']:.1f} MiB",
        )
    over = results["dribble"]["over_deadline"]
    report.verdict(
        "gate deadline honoured within one timeout",
        over <= float(GATE["timeout"]),
        f"{over:+.2f} s past it",
    )
    report.verdict("blob refused", bool(results["blob"]["refused"]), str(results["blob"]))
    report.verdict(
        "forks stopped at the build fence", bool(results["forks"]["refused"]), str(results["forks"])
    )
    report.runs.append({"results": results, "root": str(REPO_ROOT)})
    report.write()


if __name__ == "__main__":
    main()
