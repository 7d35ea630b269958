"""An upstream git server on loopback: C git's `git http-backend` run as a CGI program.

It stands in for GitHub or GitLab in the webhook tests: the daemon fetches from it with
dulwich over smart HTTP, exactly as it would from a hosted repository. Repositories may be
made private (HTTP Basic auth, any user name, one password), and every request is recorded
so a test can tell that a fetch really went over the wire.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.support.apprepo import git, git_env

CGI_TIMEOUT = 60.0
# Headers the CGI program gets as CONTENT_* rather than HTTP_*.
CONTENT_HEADERS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def http_backend() -> str:
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    program = Path(exec_path) / "git-http-backend"
    if not program.exists():
        raise RuntimeError(f"{program} is missing: git's http-backend is needed")
    return str(program)


@dataclass(frozen=True)
class Served:
    """One request the server answered."""

    method: str
    path: str  # without the query string
    query: str
    status: int
    user: str | None  # the Basic auth user name when the credentials were accepted


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a client may stall mid-request before its connection is dropped

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the record of requests is `GitHttpServer.requests`."""

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        self._serve(self._read_body())

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        repo = path.lstrip("/").split("/", 1)[0]
        allowed, user = self._authorized(repo)
        if not allowed:
            self._answer(
                401,
                [("WWW-Authenticate", 'Basic realm="upstream"'), ("Content-Type", "text/plain")],
                b"credentials required\n",
                path,
                parts.query,
                None,
            )
            return
        status, headers, payload = self._run_backend(path, parts.query, body, user)
        self._answer(status, headers, payload, path, parts.query, user)

    def _authorized(self, repo: str) -> tuple[bool, str | None]:
        """(allowed, the Basic auth user name); a public repository needs no credentials."""
        wanted = self.server.passwords.get(repo)
        if wanted is None:
            return True, None
        scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False, None
        if password != wanted:
            return False, None
        return True, user or None

    def _run_backend(
        self, path: str, query: str, body: bytes, user: str | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": "temps-test-upstream",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
        }
        if user:
            env["REMOTE_USER"] = user
        for name, value in self.headers.items():
            key = name.lower()
            if key in CONTENT_HEADERS:
                if key == "content-type":
                    env[CONTENT_HEADERS[key]] = value
                continue
            if key in ("authorization", "transfer-encoding", "connection"):
                continue
            env["HTTP_" + key.upper().replace("-", "_")] = value
        done = subprocess.run(
            [self.server.backend],
            input=body,
            env=env,
            capture_output=True,
            timeout=CGI_TIMEOUT,
            check=False,
        )
        if done.returncode != 0 and not done.stdout:
            message = done.stderr or b"git http-backend failed\n"
            return 500, [("Content-Type", "text/plain")], message
        return _parse_cgi(done.stdout)

    def _answer(
        self,
        status: int,
        headers: list[tuple[str, str]],
        payload: bytes,
        path: str,
        query: str,
        user: str | None,
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.server.record(Served(self.command, path, query, status, user))


def _parse_cgi(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Split a CGI program's output into status, headers and body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, payload = output.partition(separator)
        if found:
            break
    else:
        return 500, [("Content-Type", "text/plain")], b"malformed CGI output\n"
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name.strip():
            headers.append((name.strip(), value.strip()))
    return status, headers, payload


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, backend: str, passwords: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.backend = backend
        self.passwords = passwords
        self.served: list[Served] = []
        self._lock = threading.Lock()

    def record(self, served: Served) -> None:
        with self._lock:
            self.served.append(served)

    def snapshot(self) -> list[Served]:
        with self._lock:
            return list(self.served)


class GitHttpServer:
    """Bare repositories under `root`, served read-only over smart HTTP on 127.0.0.1.

    `create(name)` makes `root/<name>.git`; push to it by path (`push_path`), fetch from it by
    URL (`url`). `make_private(name, password)` requires that password for the repository.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = _Server(root, http_backend(), {})
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name="git-http-backend",
        )

    def __enter__(self) -> GitHttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create(self, name: str) -> Path:
        path = self.push_path(name)
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(path)],
            env=git_env(),
            capture_output=True,
            timeout=60,
            check=True,
        )
        return path

    def push_path(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def url(self, name: str, credentials: str | None = None) -> str:
        """`http://127.0.0.1:<port>/<name>.git`, with `user:password@` when given."""
        auth = f"{credentials}@" if credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}/{name}.git"

    def make_private(self, name: str, password: str) -> None:
        self._server.passwords[f"{name}.git"] = password

    def tip(self, name: str, branch: str = "main") -> str:
        return git(self.push_path(name), "rev-parse", f"refs/heads/{branch}").strip()

    def requests(self, name: str | None = None) -> list[Served]:
        """Every request answered so far, for one repository or all of them."""
        served = self._server.snapshot()
        if name is None:
            return served
        prefix = f"/{name}.git/"
        return [s for s in served if s.path.startswith(prefix)]

    def fetches(self, name: str) -> list[Served]:
        """The upload-pack exchanges that sent objects (POST git-upload-pack, answered 200)."""
        return [
            s
            for s in self.requests(name)
            if s.method == "POST" and s.path.endswith("/git-upload-pack") and s.status == 200
        ]
