"""What the CLI imports before it does anything: the parser that every command builds, and
`temps run`'s own path (its ask and its attach), leave out httpx and everything of the
daemon's, so that a one-off run starts without them (BENCHMARKS.md, "One-off runs").

Each is checked in a fresh interpreter running the real `main`, where no other test has
imported anything."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# The daemon's libraries, and httpx, which only the other client commands use.
NOT_FOR_A_RUN = {
    "httpx",
    "httpcore",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "pydantic_settings",
    "sqlmodel",
    "sqlalchemy",
    "alembic",
    "structlog",
    "docker",
    "dulwich",
    "anyio",
    "jinja2",
    "cryptography",
}

# `main` with the given words, then (with `attaching`) the module that attaches to a run;
# the last line printed is every top-level module the interpreter holds then.
PROBE = """
import json, sys
from receiver.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
if sys.argv[1] == "attaching":
    import receiver.cli.attach
print()
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A daemon URL where nothing listens (the run's ask fails at once, after its imports),
    a token, no stored login, no repository around."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {key: value for key, value in os.environ.items() if not key.startswith("TEMPS_")}
    return clean | {
        "TEMPS_URL": f"http://127.0.0.1:{port}",
        "TEMPS_TOKEN": "temps_not_checked",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TEMPS_CLIENT_FILE": str(tmp_path / "client.toml"),
    }


def imported(env: dict[str, str], cwd: Path, *argv: str, attaching: bool = False) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "attaching" if attaching else "-", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return set(modules)


def test_a_run_asks_and_attaches_without_httpx_or_the_daemons_libraries(
    env: dict[str, str], tmp_path: Path
) -> None:
    modules = imported(env, tmp_path, "run", "myapp", "--", "true", attaching=True)
    assert "wsproto" in modules and "h11" in modules  # the attach and the ask
    heavy = modules & (NOT_FOR_A_RUN | {"websockets", "http", "email"})
    assert not heavy, f"temps run imported {sorted(heavy)}"


def test_the_parser_of_every_command_imports_neither_httpx_nor_a_websocket_client(
    env: dict[str, str], tmp_path: Path
) -> None:
    modules = imported(env, tmp_path, "--help")
    assert "argparse" in modules
    heavy = modules & (NOT_FOR_A_RUN | {"websockets", "wsproto"})
    assert not heavy, f"temps --help imported {sorted(heavy)}"
