"""push: `git push` of a generated 50 MB / 2,000-file repository, then of a 200-file change,
to temps (dulwich behind uvicorn) and to C git's `git http-backend` (run as a CGI by a tiny
threaded HTTP server started here on loopback), on the same data, in interleaved runs.

The pushes go to a branch other than main, so temps stores them and deploys nothing: the
figure is the git transport alone. Every run pushes into fresh, empty repositories.

    .venv/bin/python bench/push.py [--runs 3] [--megabytes 50] [--files 2000]
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from common import (
    header,
    parse_args,
    push,
    running_daemon,
    secs,
    spread,
    summary,
)

from tests.support.apprepo import git

RATIO_TARGET = 1.3
REFSPEC = "{commit}:refs/heads/bench"
CHANGED_FILES = 200
SEED = 7


def generate(repo: Path, megabytes: int, files: int) -> tuple[str, str]:
    """A repository of `files` random (incompressible) files, then a commit changing 200 of
    them; returns both commits."""
    rng = random.Random(SEED)
    size = megabytes * 1_000_000 // files
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Temps Bench")
    git(repo, "config", "user.email", "bench@temps.invalid")
    paths = [repo / f"d{index // 100:02d}" / f"f{index:04d}.bin" for index in range(files)]
    for path in paths:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    git(repo, "add", "-A", timeout=300)
    git(repo, "commit", "-q", "-m", "initial", timeout=300)
    first = git(repo, "rev-parse", "HEAD").strip()
    for path in paths[:: max(1, files // CHANGED_FILES)][:CHANGED_FILES]:
        path.write_bytes(rng.randbytes(size))
    git(repo, "commit", "-q", "-am", "change", timeout=300)
    return first, git(repo, "rev-parse", "HEAD").strip()


class GitBackend(BaseHTTPRequestHandler):
    """Runs `git http-backend` as a CGI per request, streaming the body in and out."""

    protocol_version = "HTTP/1.1"
    root = Path()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        url = urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "bench",
            "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        length = self.headers.get("Content-Length")
        if length is not None:
            env["CONTENT_LENGTH"] = length
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        process = subprocess.Popen(
            ["git", "http-backend"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdin is not None and process.stdout is not None
        feeder = threading.Thread(target=self._feed, args=(process.stdin, length), daemon=True)
        feeder.start()
        head = b""
        while b"\r\n\r\n" not in head and b"\n\n" not in head:
            chunk = process.stdout.read1(65536)
            if not chunk:
                break
            head += chunk
        separator = b"\r\n\r\n" if b"\r\n\r\n" in head else b"\n\n"
        raw_headers, _, rest = head.partition(separator)
        status = 200
        headers = []
        for line in raw_headers.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(rest)
        while chunk := process.stdout.read1(65536):
            self.wfile.write(chunk)
        feeder.join(60)
        process.wait(60)

    def _feed(self, stdin: IO[bytes], length: str | None) -> None:
        try:
            if length is not None:
                remaining = int(length)
                while remaining > 0:
                    data = self.rfile.read(min(65536, remaining))
                    if not data:
                        break
                    stdin.write(data)
                    remaining -= len(data)
            elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    stdin.write(self.rfile.read(size))
                    self.rfile.readline()
        except (BrokenPipeError, ValueError):
            pass
        finally:
            stdin.close()


class CGitServer:
    def __init__(self, root: Path) -> None:
        handler = type("Handler", (GitBackend,), {"root": root})
        self.root = root
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CGitServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def new_repo(self, name: str) -> str:
        path = self.root / f"{name}.git"
        subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True, timeout=60)
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}.git"


def timed_push(repo: Path, url: str, commit: str) -> float:
    pushed = push(repo, url, REFSPEC.format(commit=commit))
    if pushed.code != 0:
        raise RuntimeError(f"push to {url.split('@')[-1]} failed:\n{pushed.output}")
    return pushed.seconds


def main() -> None:
    args = parse_args(
        "git push to temps vs C git http-backend",
        runs=3,
        megabytes=(int, 50, "repository size in MB (default 50)"),
        files=(int, 2000, "files in the repository (default 2000)"),
    )
    report = header("push", args)
    times: dict[str, list[float]] = {
        "temps.full": [],
        "cgit.full": [],
        "temps.change": [],
        "cgit.change": [],
    }
    with running_daemon("push", args.profile) as daemon:
        work = daemon.home.parent
        started = time.monotonic()
        first, second = generate(work / "source", args.megabytes, args.files)
        print(f"  generated the repository in {secs(time.monotonic() - started)}", flush=True)
        (work / "cgit").mkdir()
        with CGitServer(work / "cgit") as cgit:
            for run in range(args.runs):
                app = f"bulk{run + 1}"
                daemon.create_app(app)
                targets = {"temps": daemon.git_url(app), "cgit": cgit.new_repo(app)}
                order = ["temps", "cgit"] if run % 2 == 0 else ["cgit", "temps"]
                for kind, commit in (("full", first), ("change", second)):
                    for side in order:
                        seconds = timed_push(work / "source", targets[side], commit)
                        times[f"{side}.{kind}"].append(seconds)
                        print(f"    run {run + 1} {kind:6s} {side:5s} {secs(seconds)}", flush=True)
                shutil.rmtree(cgit.root / f"{app}.git", ignore_errors=True)
    report.runs = [
        {key: values[index] for key, values in times.items()} for index in range(args.runs)
    ]
    for key, values in times.items():
        report.figure(key, summary(values), f"{key}: {spread(summary(values), secs)}")
    whole = f"{args.megabytes} MB / {args.files:,} files"
    for kind, label in (("full", whole), ("change", f"{CHANGED_FILES}-file change")):
        ratio = summary(times[f"temps.{kind}"])["median"] / summary(times[f"cgit.{kind}"])["median"]
        report.figure(f"ratio.{kind}", ratio, f"temps / C git, {label}: {ratio:.2f}")
        report.verdict(f"{label}: ratio <= 1.3", ratio <= RATIO_TARGET, f"{ratio:.2f}")
    report.write()


if __name__ == "__main__":
    main()
