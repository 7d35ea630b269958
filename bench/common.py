"""What every benchmark shares: a daemon on free loopback ports, app repositories, a 1 ms
probe loop through Traefik, `hey` as the external load, figures, verdicts and the JSON file.

Benchmarks print figures and a verdict per target; they assert nothing. Every loop here is
bounded in time and in count.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
sys.path.insert(0, str(REPO_ROOT))

from tests.support.apprepo import (  # noqa: E402
    CRASH_CMD,
    DOCKERFILE,
    SERVE_CMD,
    SLOW_CGI,
    git,
    git_env,
)
from tests.support.busybox import ensure_busybox_image  # noqa: E402
from tests.support.daemon import TempsDaemon  # noqa: E402

PUSH_TIMEOUT = 300.0


# The app's own settings; bake = 0 unless a bench wants the previous slot on standby.
TEMPS_TOML = """port = 8000

[healthcheck]
path = "{path}"
interval = {interval:g}
timeout = 1.0
healthy_threshold = 3
unhealthy_threshold = 3
deadline = 20

[deploy]
drain_timeout = 15
stop_timeout = 5
keep_releases = 5
bake = {bake:g}
"""

# busybox httpd answers 200 to a CGI unless the script writes its own status line.
UNAVAILABLE_CGI = """#!/bin/sh
printf 'HTTP/1.0 503 Service Unavailable\\r\\nContent-Type: text/plain\\r\\n\\r\\nnot ready\\n'
"""


# --- figures, verdicts, results -----------------------------------------------------------------


def summary(values: list[float]) -> dict[str, Any]:
    """median, p95 (nearest rank), min and max of `values`."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p95": ordered[rank - 1],
        "min": ordered[0],
        "max": ordered[-1],
        "values": values,
    }


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def secs(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def spread(stats: dict[str, Any], fmt: Any = ms) -> str:
    if not stats.get("n"):
        return "no samples"
    return (
        f"median {fmt(stats['median'])}, p95 {fmt(stats['p95'])}, "
        f"min {fmt(stats['min'])}, max {fmt(stats['max'])} (n={stats['n']})"
    )


@dataclass
class Report:
    """A bench's figures and verdicts, printed as they come and written as JSON at the end."""

    name: str
    args: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    load_at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def figure(self, key: str, value: Any, line: str) -> None:
        self.figures[key] = value
        print(f"  {line}", flush=True)

    def verdict(self, target: str, ok: bool, measured: str) -> None:
        self.verdicts.append({"target": target, "ok": ok, "measured": measured})
        print(f"VERDICT {self.name}: {target}: {'PASS' if ok else 'MISS'} ({measured})", flush=True)

    def write(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        document = {
            "bench": self.name,
            "started": self.started,
            "seconds": round(time.time() - self.started, 1),
            "machine": machine(),
            "load_average_at_start": self.load_at_start,
            "args": self.args,
            "figures": self.figures,
            "verdicts": self.verdicts,
            "runs": self.runs,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"results: {path.relative_to(REPO_ROOT)}", flush=True)
        return path


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = done.stdout.strip().splitlines()
    return lines[0] if lines else "unknown"


def machine() -> dict[str, Any]:
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = "unknown"
    traefik = REPO_ROOT / ".venv" / "bin" / "traefik"
    return {
        "cores": os.cpu_count(),
        "memory_mb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
        "kernel": platform.release(),
        "debian": debian,
        "python": platform.python_version(),
        "docker_engine": _first_line(["docker", "version", "--format", "{{.Server.Version}}"]),
        "traefik": _first_line([str(traefik), "version"]),
        "git": _first_line(["git", "--version"]),
        "load_average": os.getloadavg(),
        "commit": _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"]),
        "uncommitted_product_files": len(
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "pipeline", "receiver"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.splitlines()
        ),
    }


def parse_args(description: str, runs: int, **extra: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=runs, help=f"runs (default {runs})")
    parser.add_argument(
        "--profile", action="store_true", help="sample the daemon with py-spy while it runs"
    )
    for name, (kind, default, text) in extra.items():
        flag = f"--{name.replace('_', '-')}"
        if kind is bool:  # --name and --no-name
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=default, help=text)
        else:
            parser.add_argument(flag, type=kind, default=default, help=text)
    return parser.parse_args()


def header(name: str, args: argparse.Namespace) -> Report:
    print(f"== {name} {vars(args)}", flush=True)
    return Report(name, vars(args))


# --- the daemon, apps, pushes --------------------------------------------------------------------


@contextlib.contextmanager
def running_daemon(name: str, profile: bool = False, **fields: Any) -> Iterator[TempsDaemon]:
    """A `temps serve` on free loopback ports with a fresh home, removed afterwards.

    `fields` go to TempsDaemon (ports, domain, extra_args, env). With `profile`, py-spy
    samples the daemon (idle threads too, so time spent waiting on Docker or a socket shows)
    into bench/results/<name>-profile.txt, collapsed stacks that bench/profile_summary.py reads.
    """
    ensure_busybox_image()
    home = Path(tempfile.mkdtemp(prefix=f"temps-bench-{name}-"))
    daemon = TempsDaemon(home=home / "home", **fields)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    sampler = None
    try:
        daemon.start()
        if profile:
            sampler = start_profile(daemon, RESULTS_DIR / f"{name}-profile.txt")
        yield daemon
    finally:
        if sampler is not None:
            stop_profile(sampler)
        daemon.stop()
        with contextlib.suppress(OSError):
            shutil.copyfile(daemon.log_path, RESULTS_DIR / f"{name}-daemon.log")
        shutil.rmtree(home, ignore_errors=True)


def start_profile(daemon: TempsDaemon, output: Path) -> subprocess.Popen[bytes]:
    py_spy = REPO_ROOT / ".venv" / "bin" / "py-spy"
    if not py_spy.exists():
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    print(f"  profiling the daemon into {output.relative_to(REPO_ROOT)}", flush=True)
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(daemon_pid(daemon)),
            "--idle",
            "--threads",
            "--format",
            "raw",
            "--rate",
            "100",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(sampler: subprocess.Popen[bytes]) -> None:
    sampler.send_signal(signal.SIGINT)
    try:
        sampler.wait(30)
    except subprocess.TimeoutExpired:
        sampler.kill()
        sampler.wait(10)


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def commit_app(
    repo: Path,
    version: str,
    *,
    health: str = "ok",
    crash: bool = False,
    bake: float = 0,
    interval: float = 0.2,
    slow_seconds: int = 5,
) -> str:
    """The harness's busybox site at `version`, with the bench's temps.toml; returns the sha.

    health: "ok" (a /health file), "404" (no such file) or "503" (a CGI answering 503).
    """
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", "Temps Bench")
        git(repo, "config", "user.email", "bench@temps.invalid")
    path = "/cgi-bin/health" if health == "503" else "/health"
    command = CRASH_CMD if crash else SERVE_CMD
    write_file(repo / "Dockerfile", DOCKERFILE.format(extra="", cmd=command))
    write_file(repo / "temps.toml", TEMPS_TOML.format(path=path, interval=interval, bake=bake))
    write_file(repo / "www" / "index.html", f"version {version}\n")
    write_file(
        repo / "www" / "cgi-bin" / "slow",
        SLOW_CGI.format(seconds=slow_seconds, version=version),
        0o755,
    )
    (repo / "www" / "health").unlink(missing_ok=True)
    (repo / "www" / "cgi-bin" / "health").unlink(missing_ok=True)
    if health == "ok":
        write_file(repo / "www" / "health", "ok\n")
    elif health == "503":
        write_file(repo / "www" / "cgi-bin" / "health", UNAVAILABLE_CGI, 0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", version)
    return git(repo, "rev-parse", "HEAD").strip()


@dataclass
class Push:
    code: int
    output: str
    started: float  # epoch seconds
    finished: float
    lines: list[tuple[float, str]]  # (epoch arrival, line) of git's output

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    def first(self, needle: str) -> float | None:
        for at, line in self.lines:
            if needle in line:
                return at
        return None


def push(repo: Path, url: str, refspec: str = "main:main", on_line: Any = None) -> Push:
    """`git push`, reading its output line by line as it arrives; `on_line(text)` per line."""
    started = time.time()
    process = subprocess.Popen(
        ["git", "push", "--progress", url, refspec],
        cwd=repo,
        env=git_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[tuple[float, str]] = []
    timer = threading.Timer(PUSH_TIMEOUT, process.kill)
    timer.start()
    try:
        for raw in iter(process.stdout.readline, b""):
            for part in raw.decode("utf-8", "replace").replace("\r", "\n").splitlines():
                if part.strip():
                    lines.append((time.time(), part))
                    if on_line is not None:
                        on_line(part)
        code = process.wait()
    finally:
        timer.cancel()
    finished = time.time()
    return Push(code, "\n".join(line for _, line in lines), started, finished, lines)


def event_at(release: dict[str, Any], state: str, was: str | None = None) -> float | None:
    """When the release entered `state` (from `was`, if given)."""
    for event in release.get("events", []):
        if event["state"] == state and (was is None or event["was"] == was):
            return float(event["at"])
    return None


def step_seconds(release: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in (release.get("timings") or {}).items()}


def daemon_pid(daemon: TempsDaemon) -> int:
    assert daemon.process is not None
    return daemon.process.pid


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB, from /proc."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def traefik_pid(daemon: TempsDaemon) -> int | None:
    try:
        return int((daemon.home / "traefik" / "traefik.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def switch_confirm_seconds(daemon: TempsDaemon, app: str) -> dict[str, float]:
    """Per release label, the daemon's own 'confirmed in' figure from its JSON log."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in daemon.log_path.read_text(errors="replace").splitlines():
            if '"traefik.switched"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("app") == app:
                    found[str(entry.get("release"))] = float(entry["seconds"])
    return found


# --- a 1 ms probe loop through Traefik -----------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    sent: float  # epoch seconds
    received: float
    status: int | None  # None: the request failed
    release: str | None  # X-Temps-Release
    body: str


class ProbeLoop:
    """GET `path` through Traefik every `every` seconds, spread over `workers` keep-alive
    connections (one request through Traefik takes longer than 1 ms from Python). With `tls`,
    over HTTPS: `host` goes in the SNI and the served chain is verified by `tls`.

    Records every answer with wall-clock times so they can be set against the daemon's event
    timestamps. Ends on stop(), or after `max_seconds` or `max_requests`.
    """

    def __init__(
        self,
        port: int,
        host: str,
        path: str = "/",
        every: float = 0.001,
        workers: int = 2,
        max_seconds: float = 120.0,
        max_requests: int = 300_000,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port, self.host, self.path, self.every = port, host, path, every
        self.tls = tls
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self._samples: list[list[Sample]] = [[] for _ in range(workers)]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index,), name="probe-loop", daemon=True)
            for index in range(workers)
        ]
        self._started = self._stopped = 0.0

    def __enter__(self) -> ProbeLoop:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Sample]:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._stopped = self._stopped or time.monotonic()
        return self.samples

    @property
    def samples(self) -> list[Sample]:
        merged = [sample for samples in self._samples for sample in samples]
        return sorted(merged, key=lambda sample: sample.received)

    @property
    def mean_interval(self) -> float:
        """Seconds between two requests, all workers together."""
        count = sum(len(samples) for samples in self._samples)
        return (self._stopped - self._started) / count if count else 0.0

    def _connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        connection.connect()
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            # What HTTPSConnection.connect does, with the app's host rather than the address
            # as the name to send and check; the handshake is the new connection's first cost.
            connection.sock = self.tls.wrap_socket(connection.sock, server_hostname=self.host)
        return connection

    def _run(self, index: int) -> None:
        samples = self._samples[index]
        period = self.every * len(self._threads)
        deadline = time.monotonic() + self.max_seconds
        limit = self.max_requests // len(self._threads)
        connection: http.client.HTTPConnection | None = None
        next_at = time.monotonic() + self.every * index
        while not self._stop.is_set() and len(samples) < limit:
            now = time.monotonic()
            if now >= deadline:
                break
            if next_at > now:
                time.sleep(next_at - now)
            next_at = max(next_at + period, time.monotonic())
            sent = time.time()
            try:
                if connection is None:
                    connection = self._connect()
                connection.request("GET", self.path, headers={"Host": self.host})
                response = connection.getresponse()
                body = response.read().decode("utf-8", "replace")
                sample = Sample(
                    sent, time.time(), response.status, response.getheader("X-Temps-Release"), body
                )
            except (OSError, http.client.HTTPException) as exc:
                sample = Sample(sent, time.time(), None, None, f"{type(exc).__name__}: {exc}")
                if connection is not None:
                    connection.close()
                connection = None
            samples.append(sample)
        if connection is not None:
            connection.close()

    def first(self, *, release: str | None = None, body: str | None = None) -> Sample | None:
        """The first 2xx answer (by arrival) from `release`, or whose body is `body`."""
        for sample in self.samples:
            if sample.status is None or not 200 <= sample.status < 300:
                continue
            if release is not None and sample.release != release:
                continue
            if body is not None and sample.body.strip() != body:
                continue
            return sample
        return None

    def failures(self) -> list[Sample]:
        return [s for s in self.samples if s.status is None or not 200 <= s.status < 300]


# --- hey: the external load generator ------------------------------------------------------------


_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.M)
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$", re.M)
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"Total:\s+([\d.]+) secs")
_PERCENTILE = re.compile(r"^\s*(\d+)%+ in ([\d.]+) secs", re.M)  # some builds print "%%"


@dataclass
class HeyResult:
    command: list[str]
    statuses: dict[int, int]
    errors: dict[str, int]
    rate: float
    seconds: float
    output: str
    latency: dict[int, float] = field(default_factory=dict)  # percentile -> seconds

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse_hey(command: list[str], output: str) -> HeyResult:
    statuses = {int(code): int(n) for code, n in _STATUS.findall(output)}
    errors: dict[str, int] = {}
    if "Error distribution:" in output:
        section = output.split("Error distribution:", 1)[1]
        for count, text in _ERROR.findall(section):
            errors[text.strip()] = errors.get(text.strip(), 0) + int(count)
    rate = _RATE.search(output)
    total = _TOTAL.search(output)
    return HeyResult(
        command,
        statuses,
        errors,
        float(rate.group(1)) if rate else 0.0,
        float(total.group(1)) if total else 0.0,
        output,
        {int(rank): float(value) for rank, value in _PERCENTILE.findall(output)},
    )


class Hey:
    """`hey` running in the background until stop() (SIGINT makes it print its summary)."""

    def __init__(
        self,
        url: str,
        host: str,
        *,
        workers: int,
        qps_per_worker: float,
        max_seconds: int,
        keepalive: bool = True,
    ) -> None:
        self.command = [
            "hey",
            "-z",
            f"{max_seconds}s",
            "-c",
            str(workers),
            "-q",
            f"{qps_per_worker:g}",
            "-t",
            "30",
            "-host",
            host,
        ]
        if not keepalive:
            self.command.append("-disable-keepalive")
        self.command.append(url)
        self.max_seconds = max_seconds
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Hey:
        self._process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        return self

    def stop(self) -> HeyResult:
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            output, _ = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            output, _ = self._process.communicate()
        return parse_hey(self.command, output)


class SlowRequest:
    """One long request (`/cgi-bin/slow`, 5 s) through Traefik on its own connection."""

    def __init__(self, port: int, host: str, path: str = "/cgi-bin/slow", timeout: float = 60.0):
        self.port, self.host, self.path, self.timeout = port, host, path, timeout
        self.sent = self.received = 0.0
        self.status: int | None = None
        self.body = ""
        self._thread = threading.Thread(target=self._run, name="slow-request", daemon=True)

    def start(self) -> SlowRequest:
        self._thread.start()
        return self

    def _run(self) -> None:
        self.sent = time.time()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            connection.request("GET", self.path, headers={"Host": self.host})
            response = connection.getresponse()
            self.body = response.read().decode("utf-8", "replace").strip()
            self.status = response.status
        except (OSError, http.client.HTTPException) as exc:
            self.body = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
            self.received = time.time()

    def wait(self) -> SlowRequest:
        self._thread.join(self.timeout + 5)
        return self

    @property
    def seconds(self) -> float:
        return self.received - self.sent

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "seconds": round(self.seconds, 3),
            "status": self.status,
            "body": self.body,
        }


@dataclass
class Rollback:
    started: float
    finished: float
    status: int
    body: dict[str, Any]


def rollback_with_curl(daemon: TempsDaemon, app: str, release: int | None = None) -> Rollback:
    """`curl -X POST .../rollback?wait=true`, the way a user would call it."""
    payload = json.dumps({"release": release} if release else {})
    command = [
        "curl",
        "-sS",
        "--max-time",
        "300",
        "-X",
        "POST",
        "-H",
        f"Authorization: Bearer {daemon.admin_token}",
        "-H",
        "Content-Type: application/json",
        "-d",
        payload,
        "-w",
        "\n%{http_code}",
        f"{daemon.api_url}/api/apps/{app}/rollback?wait=true",
    ]
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, timeout=320, check=False)
    finished = time.time()
    text, _, code = done.stdout.rpartition("\n")
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {"raw": text}
    return Rollback(started, finished, int(code) if code.isdigit() else 0, body)
