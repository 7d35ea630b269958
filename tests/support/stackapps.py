"""Test apps without a Dockerfile, one per stack the builders detect.

Each answers `version <v> <greeting>` on `/` at $PORT. The build container reaches no
package registry, so the one dependency of the Python and Node apps ships in the repository
as a file made here (a wheel, an npm tarball with its lockfile entry), named by the
manifest as any local package would be. `version` changes the code alone; the manifests stay
byte for byte the same, so a second push may reuse the dependency layer.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.support.apprepo import git

STACKS = ("python", "node", "go", "static")
TEMPS_TOML = """port = 8000

[healthcheck]
path = "/"
interval = 0.2
timeout = 2.0
deadline = 60

[deploy]
drain_timeout = 15
stop_timeout = 5
bake = 0
"""
# What each app says after its version: its dependency's greeting, and for Node what its
# `build` script made.
GREETING = {
    "python": "hello from greet",
    "node": "hello from greet, built by npm run build",
    "go": "hello from go",
    "static": "hello from a static site",
}
# The step that installs each stack's dependencies, as the build log shows it.
DEPENDENCY_STEP = {
    "python": "RUN python3 -m pip --python /venv/bin/python install -r requirements.txt",
    "node": "RUN npm ci",
    "go": "RUN go mod download",
}

PYTHON_APP = """import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import greet

BODY = "version {version} " + greet.hello() + "\\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        data = BODY.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""
NODE_APP = """const fs = require("fs");
const http = require("http");
const greet = require("greet");

const built = fs.readFileSync(__dirname + "/dist/built.txt", "utf8").trim();
const body = "version {version} " + greet.hello() + ", " + built + "\\n";
http
  .createServer((req, res) => {{
    res.writeHead(200, {{ "Content-Type": "text/plain" }});
    res.end(body);
  }})
  .listen(Number(process.env.PORT));
"""
# The `build` script: what a bundler would do, made small.
NODE_BUILD = """const fs = require("fs");
fs.mkdirSync(__dirname + "/dist", {{ recursive: true }});
fs.writeFileSync(__dirname + "/dist/built.txt", "built by npm run build");
"""
GO_APP = """package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {{
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {{
		fmt.Fprintln(w, "version {version} hello from go")
	}})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {{
		panic(err)
	}}
}}
"""


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def greet_wheel() -> tuple[str, bytes]:
    """A pure-Python wheel of `greet` 1.0: (file name, bytes), the same bytes every time."""
    files = {
        "greet/__init__.py": 'def hello():\n    return "hello from greet"\n',
        "greet-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: greet\nVersion: 1.0\n",
        "greet-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: temps-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{name},sha256={_digest(text.encode())},{len(text.encode())}"
        for name, text in files.items()
    ]
    files["greet-1.0.dist-info/RECORD"] = (
        "\n".join([*record, "greet-1.0.dist-info/RECORD,,"]) + "\n"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return "greet-1.0-py3-none-any.whl", out.getvalue()


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def greet_tarball() -> bytes:
    """`npm pack` of a `greet` 1.0.0 package, the same bytes every time."""
    files = {
        "package/package.json": json.dumps(
            {"name": "greet", "version": "1.0.0", "main": "index.js"}
        ),
        "package/index.js": 'exports.hello = () => "hello from greet";\n',
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def python_app(repo: Path, version: str) -> None:
    name, wheel = greet_wheel()
    write(repo / "wheels" / name, wheel)
    write(repo / "requirements.txt", "--no-index\n--find-links ./wheels\ngreet==1.0\n")
    write(repo / "Procfile", "web: python app.py\n")
    write(repo / "app.py", PYTHON_APP.replace("{version}", version))


def node_app(repo: Path, version: str) -> None:
    tarball = greet_tarball()
    spec = "file:vendor/greet-1.0.0.tgz"
    package = {"name": "nodeapp", "version": "1.0.0", "private": True,
               "dependencies": {"greet": spec},
               "scripts": {"build": "node build.js", "start": "node server.js"}}  # fmt: skip
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    root = {k: v for k, v in package.items() if k in ("name", "version", "dependencies")}
    lock = {
        "name": "nodeapp",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": root,
            "node_modules/greet": {"version": "1.0.0", "resolved": spec, "integrity": integrity},
        },
    }
    write(repo / "vendor" / "greet-1.0.0.tgz", tarball)
    write(repo / "package.json", json.dumps(package, indent=2) + "\n")
    write(repo / "package-lock.json", json.dumps(lock, indent=2) + "\n")
    write(repo / "server.js", NODE_APP.format(version=version))
    write(repo / "build.js", NODE_BUILD.format())


def go_app(repo: Path, version: str) -> None:
    write(repo / "go.mod", "module example.com/hello\n\ngo 1.19\n")
    write(repo / "main.go", GO_APP.format(version=version))


def static_app(repo: Path, version: str) -> None:
    write(repo / "index.html", f"<p>version {version} hello from a static site</p>\n")


WRITERS: dict[str, Callable[[Path, str], None]] = {
    "python": python_app,
    "node": node_app,
    "go": go_app,
    "static": static_app,
}


def make_stack_repo(repo: Path, stack: str, version: str, toml: str = TEMPS_TOML) -> str:
    """Write `stack`'s test app at `version` into the git repository `repo` (made if new) and
    commit it; the commit's sha."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", "Temps Test")
        git(repo, "config", "user.email", "test@temps.invalid")
    write(repo / "temps.toml", toml)
    WRITERS[stack](repo, version)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", f"{stack} {version}")
    return git(repo, "rev-parse", "HEAD").strip()
