"""Git smart HTTP over ASGI: the request spooled and checked, pipeline.git answers it in a
thread, its answer streamed back.

The request body is spooled first (git sends the whole pack before it reads anything), then
the git service runs in a thread while its output is streamed to the client as it is
written, so `remote:` progress lines reach the pusher while the deploy runs in the update
hook.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import zlib
from collections.abc import AsyncIterator
from io import SEEK_END
from pathlib import Path
from typing import IO, cast

import structlog
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from pipeline import disk
from pipeline.errors import DiskFull, InvalidInput, TooLarge
from pipeline.git import compact
from pipeline.git import serve as gitserve
from pipeline.git.pack import PackLimits, check_pack
from pipeline.git.serve import SERVICES as SERVICES
from pipeline.git.serve import RefCallback

log = structlog.get_logger()

SPOOL_IN_MEMORY = 16 * 1024 * 1024
INFLATE_PIECE = 1024 * 1024
MAX_PKT_LINE = 65520  # git's LARGE_PACKET_MAX
MAX_COMMAND_LINES = 10_000
NO_CACHE = {"Cache-Control": "no-cache, max-age=0, must-revalidate", "Pragma": "no-cache"}


def advertise(repo_path: Path, service: str, on_ref: RefCallback) -> Response:
    """GET info/refs?service=...: the refs advertisement. (`on_ref` is not called: an
    advertisement updates no ref.)"""
    return Response(
        gitserve.advertisement(repo_path, service),
        media_type=f"application/x-{service}-advertisement",
        headers=NO_CACHE,
    )


async def serve_rpc(
    request: Request,
    repo_path: Path,
    service: str,
    on_ref: RefCallback,
    max_bytes: int,
    pack_limits: PackLimits,
) -> Response:
    """POST git-upload-pack / git-receive-pack, streamed back as the service writes."""
    body = await _spool(request, max_bytes)
    commands: list[bytes] = []
    if service == "git-receive-pack":
        try:
            commands, pack_start = _command_lines(body)
            # Before anything is unpacked: what the pack unpacks to, within the limits, and
            # room on the disk for the pack as it is stored.
            await run_in_threadpool(check_pack, body, pack_start, pack_limits)
            disk.ensure_room(repo_path, room_for_pack(body, pack_start))
        except (InvalidInput, TooLarge, DiskFull) as exc:
            body.close()
            sideband = any(b"side-band" in line for line in commands)
            return _git_error(service, str(exc), sideband=sideband)
    if any(line.startswith(b"shallow ") for line in commands):
        body.close()
        return _git_error(
            service,
            "shallow pushes are not supported: run `git fetch --unshallow` and push again",
            sideband=any(b"side-band" in line for line in commands),
        )
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def write(data: bytes) -> int:
        loop.call_soon_threadsafe(queue.put_nowait, bytes(data))
        return len(data)

    def run() -> None:
        try:
            gitserve.serve(repo_path, service, body.read, write, on_ref)
        except Exception:
            log.exception("git.rpc_failed", service=service, repo=repo_path.name)
        finally:
            body.close()
            loop.call_soon_threadsafe(queue.put_nowait, None)
        if service == "git-receive-pack":
            compact.merge_if_many(repo_path)  # once the pusher has its answer

    threading.Thread(target=run, name=f"{service}-{repo_path.name}", daemon=True).start()

    async def stream() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    return StreamingResponse(
        stream(), media_type=f"application/x-{service}-result", headers=NO_CACHE
    )


def room_for_pack(body: IO[bytes], pack_start: int) -> int:
    """What storing the pushed pack takes: the pack as sent, with its index (28 bytes an
    object, half the pack for packs of tiny objects) and the few objects git leaves out of a
    thin pack, which the server appends."""
    size = body.seek(0, SEEK_END) - pack_start
    body.seek(0)
    return size + size // 2 + disk.MIB


def _command_lines(body: IO[bytes]) -> tuple[list[bytes], int]:
    """The pkt-lines before the pack (`shallow <sha>` grafts, then ref updates), and where
    the pack starts.

    Raises InvalidInput for a length git never sends (0001-0003, or past 65520), which
    the git service would otherwise take as a request to read the whole rest of the body."""
    lines: list[bytes] = []
    try:
        while True:
            header = body.read(4)
            if len(header) < 4 or header == b"0000":
                break
            if len(lines) >= MAX_COMMAND_LINES:
                raise InvalidInput(f"malformed git request: over {MAX_COMMAND_LINES} commands")
            length = int(header, 16)
            if not 4 <= length <= MAX_PKT_LINE:
                raise InvalidInput(f"malformed git request: pkt-line length {header.decode()!r}")
            lines.append(body.read(length - 4))
        pack_start = body.tell()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("malformed git request: a pkt-line length is not hex") from exc
    finally:
        body.seek(0)
    return lines, pack_start


def _git_error(service: str, message: str, *, sideband: bool) -> Response:
    """git prints `remote error: <message>` and exits non-zero."""
    payload = (b"\x03" + message.encode() + b"\n") if sideband else f"ERR {message}\n".encode()
    packet = f"{len(payload) + 4:04x}".encode() + payload
    return Response(packet, media_type=f"application/x-{service}-result", headers=NO_CACHE)


async def _spool(request: Request, max_bytes: int) -> IO[bytes]:
    spool = cast(IO[bytes], tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY))  # noqa: SIM115
    encoding = request.headers.get("content-encoding", "").lower()
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip") else None
    size = 0

    def keep(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > max_bytes:
            spool.close()
            raise TooLarge(f"push is larger than the limit of {max_bytes} bytes")
        spool.write(data)

    async for chunk in request.stream():
        if inflate is None:
            keep(chunk)
            continue
        # Inflated a bounded piece at a time: a small gzip body may expand without end.
        data = chunk
        while data:
            keep(inflate.decompress(data, INFLATE_PIECE))
            data = inflate.unconsumed_tail
    if inflate:
        keep(inflate.flush())
    spool.seek(0)
    return spool
