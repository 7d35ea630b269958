"""git's pack protocol for the smart HTTP endpoints: the refs advertisement, upload-pack
and receive-pack, through dulwich's server handlers.

A push runs `on_ref` as dulwich's `update` hook (the entry it looks up in `repo.hooks` for
each pushed ref): the objects are stored, the ref has not moved, and refusing it is raising
`HookError`, which the pusher sees as `! [remote rejected] <ref> (<reason>)`.

A pack the disk has no room for fails the push before any hook runs: dulwich answers with
the error's text as the unpack status (git prints `remote unpack failed: <text>`), so the
text is made to name the disk, and the part of the pack written so far is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import structlog
from dulwich.errors import GitProtocolError, HookError
from dulwich.hooks import Hook
from dulwich.objects import ObjectID
from dulwich.protocol import (
    CAPABILITY_SIDE_BAND_64K,
    SIDE_BAND_CHANNEL_PROGRESS,
    ReceivableProtocol,
)
from dulwich.refs import Ref, RefsContainer
from dulwich.repo import Repo
from dulwich.server import DictBackend, ReceivePackHandler, UploadPackHandler

from pipeline import disk
from pipeline.errors import InvalidInput
from pipeline.git.repo import opened

log = structlog.get_logger()

ZERO_SHA = "0" * 40
SERVICES = ("git-upload-pack", "git-receive-pack")
MAX_REASON = 300

Progress = Callable[[str], None]
# (ref, old sha, new sha, progress) -> None to accept the ref, or a one-line reason to refuse.
RefCallback = Callable[[str, str, str, Progress], str | None]
Read = Callable[[int], bytes]
Write = Callable[[bytes], int | None]


def advertisement(repo_path: Path, service: str) -> bytes:
    """The answer to GET info/refs?service=...: the refs and capabilities, in one go."""
    chunks: list[bytes] = []

    def write(data: bytes) -> int:
        chunks.append(data)
        return len(data)

    proto = ReceivableProtocol(lambda _n: b"", write)
    proto.write_pkt_line(f"# service={service}\n".encode())
    proto.write_pkt_line(None)
    with opened(repo_path) as repo:
        _handler(repo, proto, service, advertise_refs=True).handle()
    return b"".join(chunks)


def serve(repo_path: Path, service: str, read: Read, write: Write, on_ref: RefCallback) -> None:
    """Answer one upload-pack or receive-pack request, read from `read`, written to `write`
    as it is produced. Blocking: run it in a thread.

    Raises InvalidInput for a request that breaks git's protocol."""
    with opened(repo_path) as repo:
        proto = ReceivableProtocol(read, write)
        handler = _handler(repo, proto, service)
        if isinstance(handler, ReceivePackHandler):
            repo.hooks["update"] = DeployOnUpdate(repo.refs, on_ref, _progress_of(handler))
            _unpack_or_say_the_disk_is_full(repo, repo_path)
        try:
            handler.handle()
        except GitProtocolError as exc:
            raise InvalidInput(f"malformed git request: {exc}") from exc


class DeployOnUpdate(Hook):
    """The `update` hook of a push: `on_ref` decides, the ref moves only if it accepts."""

    def __init__(self, refs: RefsContainer, on_ref: RefCallback, progress: Progress) -> None:
        self.refs = refs
        self.on_ref = on_ref
        self.progress = progress

    def execute(self, ref_name: Ref, old_sha: ObjectID, new_sha: ObjectID) -> tuple[bytes, bytes]:
        ref, old, new = ref_name.decode(), old_sha.decode(), new_sha.decode()
        try:
            reason = self.on_ref(ref, old, new, self.progress)
        except Exception:
            # Anything else raised here would end the push with an HTTP 500 mid-stream.
            log.exception("git.update_hook_crashed", ref=ref)
            reason = "internal error in temps; see the daemon log"
        if reason is not None:
            raise HookError(" ".join(reason.split())[:MAX_REASON])
        if new != ZERO_SHA and _current(self.refs, ref_name) != old_sha:
            # Another push moved the ref while this one deployed. What this hook accepted is
            # live now, so the ref must name it; dulwich's compare-and-set from `old_sha`,
            # which runs next, would fail (and dulwich ignores that it did).
            self.refs.set_if_equals(ref_name, None, new_sha)
        return b"", b""


class _NoRoom(OSError):
    """ENOSPC worded for the pusher: dulwich sends `str()` of it as the unpack status."""

    def __str__(self) -> str:
        return str(self.strerror)


def _unpack_or_say_the_disk_is_full(repo: Repo, repo_path: Path) -> None:
    """Wrap the repository's unpacking of a pushed pack: when the disk is full, the temporary
    pack dulwich leaves behind is removed (it would keep the space), and the error names the
    disk. A pack another push to this repository is writing meanwhile is removed as well:
    its writer is failing on the same full disk."""
    store = repo.object_store
    unpack = store.add_thin_pack
    objects = Path(store.path)

    def add_thin_pack(*args: Any, **kwargs: Any) -> Any:
        before = set(objects.glob("tmp_pack_*"))
        try:
            return unpack(*args, **kwargs)
        except OSError as exc:
            if not disk.is_full(exc):
                raise
            for partial in set(objects.glob("tmp_pack_*")) - before:
                partial.unlink(missing_ok=True)
            refused = disk.full(repo_path)
            log.error("git.disk_full", repo=repo_path.name, error=str(refused))
            raise _NoRoom(exc.errno, str(refused)) from exc

    store.add_thin_pack = add_thin_pack  # type: ignore[method-assign]


def _current(refs: RefsContainer, name: Ref) -> ObjectID:
    try:
        return refs[name]
    except KeyError:
        return ObjectID(ZERO_SHA.encode())


def _progress_of(handler: ReceivePackHandler) -> Progress:
    """`remote:` lines for the pusher, on side-band channel 2 when the client has one."""

    def progress(text: str) -> None:
        if not handler.has_capability(CAPABILITY_SIDE_BAND_64K):
            return
        if text:
            handler.proto.write_sideband(SIDE_BAND_CHANNEL_PROGRESS, text.encode())
        else:
            # An empty progress packet keeps proxies and git from giving up in quiet steps.
            handler.proto.write_pkt_line(bytes([SIDE_BAND_CHANNEL_PROGRESS]))

    return progress


def _handler(
    repo: Repo, proto: ReceivableProtocol, service: str, *, advertise_refs: bool = False
) -> ReceivePackHandler | UploadPackHandler:
    backend = DictBackend({"/": cast(Any, repo)})
    kind = ReceivePackHandler if service == "git-receive-pack" else UploadPackHandler
    return kind(backend, ["/"], proto, stateless_rpc=True, advertise_refs=advertise_refs)
