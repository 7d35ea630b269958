"""The two helpers run inside a node's namespace, as `python -m tests.support.swarm launch ...`
and `python -m tests.support.swarm forward ...` (see `__main__.py`); the harness starts them
by `helpers._self_command`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
from typing import NoReturn

from tests.support.swarm.helpers import _run


def _launch(hostname: str, mounts: list[str], binds: list[str], argv: list[str]) -> NoReturn:
    """Become the node's dockerd. `ip netns exec` left us in a private mount namespace whose
    /sys shows the node's interfaces but has lost /sys/fs/cgroup: mount those again (the
    same hierarchies as the host's, so --cgroup-parent paths match), put the node's own
    directories over the host-wide ones dockerd and containerd would share, and take the
    node's hostname (we are in a new UTS namespace), so swarm nodes are told apart."""
    for spec in mounts:
        fstype, options, target = spec.split(":", 2)
        os.makedirs(target, exist_ok=True)
        _run("mount", "-t", fstype, "-o", options, fstype, target)
    for spec in binds:
        source, target = spec.split(":", 1)
        os.makedirs(target, exist_ok=True)
        _run("mount", "--bind", source, target)
    socket.sethostname(hostname)
    os.execvp(argv[0], argv)


async def _forward(listen: str, target: str) -> None:
    """Carry TCP from `listen` to `target`, so that the registry on the host is
    `127.0.0.1:<port>` inside the node too. Hand-written: 30 lines of asyncio, where socat
    would be one more package to install on every machine."""
    target_host, target_port = target.rsplit(":", 1)

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        up_writer.close()
        writer.close()

    listen_host, listen_port = listen.rsplit(":", 1)
    server = await asyncio.start_server(connect, listen_host, int(listen_port))
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.swarm")
    commands = parser.add_subparsers(dest="command", required=True)
    launch = commands.add_parser("launch", help="exec dockerd as a node (run by the harness)")
    launch.add_argument("--hostname", required=True)
    launch.add_argument("--mount", action="append", default=[], help="fstype:options:target")
    launch.add_argument("--bind", action="append", default=[], help="source:target")
    launch.add_argument("argv", nargs=argparse.REMAINDER)
    forward = commands.add_parser("forward", help="forward TCP (run by the harness)")
    forward.add_argument("listen")
    forward.add_argument("target")
    args = parser.parse_args(argv)
    if args.command == "launch":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        _launch(args.hostname, args.mount, args.bind, command)
    asyncio.run(_forward(args.listen, args.target))
