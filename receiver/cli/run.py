"""`temps run [APP] [--tty] [--timeout S] [--] COMMAND...`: the command in a one-off container
of the app's live release, its output here as it comes, its exit code as temps' own; `temps
runs [APP]`: the app's runs, newest first.

Which words are the app: `-a APP` names it and every word is the command; else the word
before `--`; else, inside a repository whose `temps` remote names an app, the first word only
when it is that app (`temps run python manage.py migrate` runs in the remote's app, as
`heroku run` does); elsewhere the first word. Options may follow the app
(`temps run myapp --tty sh`); the command starts at `--` or at its first word.

temps' own exit codes, beside the command's: 124 when it ran out of time (as timeout(1)),
125 when it could not be run (refused, the daemon unreachable, the connection lost: as
`docker run`), 130 after Ctrl-C without a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from receiver.cli import remote, terminal
from receiver.cli.appwords import take_app
from receiver.cli.client import Client, detail_of
from receiver.cli.target import Target, resolve

COMMANDS = ("run", "runs")
TIMED_OUT, CANNOT_RUN, INTERRUPTED = 124, 125, 130
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4  # receiver.api.relay's channels
PROTOCOL = "temps.run.v1"
OPEN_TIMEOUT = 60.0  # the attach's handshake: the container is started before it is answered
STDIN_CHUNK = 64 * 1024


def add_commands(client_parser: Callable[..., argparse.ArgumentParser]) -> None:
    run = client_parser("run", "run a command in a one-off container of the live release")
    run.add_argument("-t", "--tty", action="store_true", help="an interactive terminal")
    run.add_argument(
        "--timeout", type=float, help="seconds before it is killed (default: the daemon's)"
    )
    run.add_argument("words", nargs=argparse.REMAINDER, metavar="[APP] [--] COMMAND")
    runs = client_parser("runs", "an app's one-off runs: who ran what, and how it ended")
    runs.add_argument("words", nargs="*", metavar="APP")


def run(args: argparse.Namespace) -> None:
    target = resolve(args.url, args.home)
    client = Client(target.url, target.token, target.ca_file)
    if args.command == "runs":
        app, _ = take_app(args.app_flag, args.words, 1)
        for row in client.call("GET", f"/api/apps/{app}/runs"):
            print(run_line(row))
        return
    app, tty, timeout, command = invocation(args)
    stdin_fd, stdout_fd = sys.stdin.fileno(), sys.stdout.fileno()
    # Without a terminal, stdin goes along when it is a pipe or a file, not a terminal: a
    # command that never reads it must not keep the user's keys.
    stdin = tty or not terminal.is_terminal(stdin_fd)
    cols, rows = terminal.size(stdout_fd)
    body = {"command": command, "tty": tty, "stdin": stdin, "timeout": timeout}
    if tty:
        body |= {"cols": cols, "rows": rows}
    try:
        asked = client.call("POST", f"/api/apps/{app}/runs", json=body, exit_code=CANNOT_RUN)
        with contextlib.ExitStack() as stack:
            socket = stack.enter_context(attach(target, asked["attach_url"]))
            if tty:
                stack.enter_context(terminal.raw(stdin_fd))
                resized = terminal.resizes(stdout_fd, lambda size: send_size(socket, size))
                stack.enter_context(resized)
            if stdin:
                reader = threading.Thread(
                    target=send_stdin, args=(socket, stdin_fd, tty), name="stdin", daemon=True
                )
                reader.start()
            status = relay(socket)
    except KeyboardInterrupt:
        # Anywhere from the ask to the end: the daemon kills and removes the container once
        # the socket closes (or, before it opens, when the attach never comes).
        print("\ntemps: interrupted: the run is stopped", file=sys.stderr)
        sys.exit(INTERRUPTED)
    finish(status)


def invocation(args: argparse.Namespace) -> tuple[str, bool, float | None, list[str]]:
    """(app, tty, timeout, command) from the words (see the top)."""
    words: list[str] = list(args.words)
    app: str | None = args.app_flag
    tty, timeout = bool(args.tty), args.timeout
    if app is None and words and not words[0].startswith("-"):
        inferred = None if "--" in words else remote.app()
        app = inferred if inferred is not None and words[0] != inferred else words.pop(0)
    while words and words[0].startswith("-"):
        word = words.pop(0)
        if word == "--":
            break
        if word in ("-t", "--tty"):
            tty = True
        elif word == "--timeout" and words:
            timeout = seconds(words.pop(0))
        elif word.startswith("--timeout="):
            timeout = seconds(word.partition("=")[2])
        else:
            sys.exit(f"temps: run: {word} is not an option of temps run: put the command after --")
    if not words:
        sys.exit("temps: run [APP] [--] COMMAND...: name the command to run")
    if app is None:
        app, _ = take_app(None, [], 1)
    return app, tty, timeout, words


def seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        sys.exit(f"temps: run: --timeout takes seconds, got {text!r}")


@contextlib.contextmanager
def attach(target: Target, path: str) -> Iterator[ClientConnection]:
    """The run's WebSocket, opened with the same token; exits 125 when it is refused."""
    url = "ws" + target.url.rstrip("/").removeprefix("http") + path
    secure = ssl.create_default_context(cafile=target.ca_file) if url.startswith("wss:") else None
    try:
        socket = connect(
            url,
            additional_headers={"Authorization": f"Bearer {target.token}"},
            subprotocols=[Subprotocol(PROTOCOL)],
            ssl=secure,
            open_timeout=OPEN_TIMEOUT,
            max_size=None,
        )
    except InvalidStatus as refused:
        cannot_run(f"{refused.response.status_code}: {detail_of(refused.response.body)}")
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        cannot_run(f"cannot attach to the run at {url}: {exc}")
    with socket:
        yield socket


def relay(socket: ClientConnection) -> dict[str, Any] | None:
    """Write the command's output as it comes; its status once it ends (None: cut off)."""
    try:
        for message in socket:
            if not isinstance(message, bytes) or not message:
                continue
            channel, payload = message[0], message[1:]
            if channel == STATUS:
                status: dict[str, Any] = json.loads(payload)
                return status
            out = sys.stdout if channel == STDOUT else sys.stderr if channel == STDERR else None
            if out is not None:
                out.buffer.write(payload)
                out.buffer.flush()
    except ConnectionClosed:
        return None
    return None


def send_stdin(socket: ClientConnection, fd: int, tty: bool) -> None:
    """What the user types or pipes in, as it comes; its end, without a terminal."""
    with contextlib.suppress(ConnectionClosed, OSError):
        while data := os.read(fd, STDIN_CHUNK):
            socket.send(bytes((STDIN,)) + data)
        if not tty:
            socket.send(bytes((STDIN,)))


def send_size(socket: ClientConnection, size: tuple[int, int]) -> None:
    cols, rows = size
    with contextlib.suppress(ConnectionClosed, OSError):
        socket.send(bytes((RESIZE,)) + json.dumps({"cols": cols, "rows": rows}).encode())


def finish(status: dict[str, Any] | None) -> NoReturn:
    """Exit as the command did, or say why it did not end by itself."""
    if status is None:
        cannot_run("the connection to the daemon was lost before the command ended")
    code = status.get("exit_code")
    if status.get("state") == "exited" and isinstance(code, int) and 0 <= code <= 255:
        sys.exit(code)
    print(f"temps: the run {status.get('state')}: {status.get('detail')}", file=sys.stderr)
    sys.exit(TIMED_OUT if status.get("state") == "timed_out" else CANNOT_RUN)


def cannot_run(reason: str) -> NoReturn:
    print(f"temps: {reason}", file=sys.stderr)
    sys.exit(CANNOT_RUN)


def run_line(row: dict[str, Any]) -> str:
    ended = row["state"] if row["exit_code"] is None else f"exit {row['exit_code']}"
    command = " ".join(row["command"])
    return f"{row['id']:<6} v{row['release']:<5} {row['who']:<16} {ended:<14} {command}"
