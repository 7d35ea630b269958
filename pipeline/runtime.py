"""What the pipeline asks of a container runtime, and the records it answers with.

A release runs in a slot: the set of containers that serve it (its web containers and
its background processes). `pipeline.docker.runtime.DockerRuntime` is the single-host engine;
`pipeline.docker.swarm.SwarmRuntime` runs each of those containers as a Swarm service of one
task, on whichever node Swarm places it. The deploy story is the same on both.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

Output = Callable[[str], None]
LOOPBACK = "127.0.0.1"


class Backend(enum.StrEnum):
    """Where apps run (`temps serve --runtime`); `pipeline.backends` opens each."""

    ENGINE = "engine"  # the one Docker engine of this host
    SWARM = "swarm"  # this engine is a Swarm manager: each container a one-task service


@dataclass(frozen=True)
class Instance:
    """One container of a slot and where Traefik reaches it: on a single host its address on
    the home's bridge and the port the app serves on (or, with published ports, a loopback
    port Docker publishes it on); on Swarm its node's address and the port published there.

    `endpoint` names the container's attachment to the bridge, which Docker makes anew each
    time the container starts: a container restarted at the same address is still a new
    start, to be gated again. "" where the runtime does not say (Swarm, older records)."""

    container: str
    port: int
    address: str = LOOPBACK
    endpoint: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


@dataclass(frozen=True)
class Slot:
    """The containers that serve one release."""

    instances: tuple[Instance, ...]

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(instance.url for instance in self.instances)

    @property
    def first(self) -> Instance:
        """The instance the release record names (its container and port)."""
        return self.instances[0]


@dataclass(frozen=True)
class Limits:
    """What an app container may use; it never gets privileges, host mounts or the socket."""

    memory_mb: int = 0
    cpus: float = 0.0
    pids: int = 4096


@dataclass(frozen=True)
class Mount:
    """A named volume of the app's and where it is mounted: never a path of the host."""

    volume: str
    path: str


@dataclass(frozen=True)
class ImageBuild:
    """An image to build from a build context (a tar stream) and tag; each step gets at most
    `memory_mb` (swap included; 0: no limit) and runs at `cpu_shares` (Docker's CPU weight;
    0: the engine's default), and a build still running after `timeout` is stopped and fails
    the deploy. Its lines go to `output`."""

    tag: str
    context: Iterable[bytes]
    labels: dict[str, str]
    output: Output
    timeout: float
    memory_mb: int = 0
    cpu_shares: int = 0


@dataclass(frozen=True)
class Credentials:
    """A login to an image registry."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ContainerSpec:
    """A container to start from a release's image."""

    name: str
    image: str
    env: dict[str, str]
    labels: dict[str, str]
    limits: Limits
    mounts: tuple[Mount, ...] = ()
    command: tuple[str, ...] = ()  # empty: the image's own command
    # Where it may run, in each backend's own terms, by backend; one that places nothing
    # (the single engine) ignores it.
    placement: Mapping[Backend, tuple[str, ...]] = field(default_factory=dict)
    stop_timeout: float = 10.0  # SIGTERM to SIGKILL, where the runtime must know it at start


@dataclass(frozen=True)
class Terminal:
    """The terminal a one-off run is given, in characters."""

    cols: int
    rows: int


STDOUT, STDERR = 1, 2  # the streams of `Attached.output`


class Attached(Protocol):
    """A one-off container running with its streams attached (`Runtime.run_attached`).

    One thread reads its output while others write to its stdin, resize its terminal or
    remove it: removing it ends the output."""

    name: str

    def output(self) -> Iterator[tuple[int, bytes]]:
        """(STDOUT or STDERR, bytes) as the command writes them, byte for byte (all of a
        terminal's on STDOUT), until its streams end."""

    def send(self, data: bytes) -> None:
        """Bytes to the command's stdin, when it was started with one."""

    def close_stdin(self) -> None:
        """The command reads the end of its stdin."""

    def resize(self, terminal: Terminal) -> None: ...

    def exit_code(self) -> int | None:
        """How the command exited, once its output has ended; None when it has not (its
        streams were detached from) or is gone."""

    def remove(self) -> None:
        """Kill and remove the container at once, whatever it is doing; again is harmless."""


@dataclass(frozen=True)
class ContainerState:
    status: str  # created, running, restarting, exited, dead, missing
    exit_code: int
    started_at: float | None = None  # its last start
    restarts: int = 0  # by its restart policy
    # The engine's id: a container started again under the same name has a new one ("" when
    # missing). On Swarm, the service's.
    id: str = ""

    @property
    def stopped(self) -> bool:
        return self.status in ("exited", "dead", "restarting", "missing")


@dataclass(frozen=True)
class Container:
    """One of this home's containers as a listing shows it; `ports` maps each port it serves
    on inside to the port it is reached at, at `address`: the same port at its address on the
    home's bridge, a published one on loopback, or on Swarm one published on its node."""

    name: str
    running: bool
    ports: dict[int, int]
    address: str = LOOPBACK
    # Not running, but the runtime brings it back by itself: Docker's restart policy between
    # two tries, a Swarm service placing its task again. Whoever watches leaves it to that.
    waiting: bool = False
    endpoint: str = ""  # as `Instance.endpoint`: new at each start, "" where not known

    def instance(self, port: int) -> Instance | None:
        """Where Traefik reaches it serving on `port` inside, if it runs and serves there."""
        reached = self.ports.get(port) if self.running else None
        if reached is None:
            return None
        return Instance(self.name, reached, self.address, self.endpoint)


@dataclass(frozen=True)
class LogLine:
    """One line a container printed, stdout or stderr, as its engine recorded it."""

    at: int  # nanoseconds since the epoch, by the engine's clock
    text: bytes  # as printed, any bytes, without its newline


class LogStream(Protocol):
    """A container's lines, oldest first; closed from any thread, a blocked read returns."""

    def __iter__(self) -> Iterator[LogLine]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Node:
    """A machine containers run on: the one engine, or a Swarm node."""

    name: str
    role: str  # "engine" for the single host; "manager" or "worker" on Swarm
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    address: str
    containers: tuple[str, ...]  # this home's, running there


@dataclass(frozen=True)
class Drained:
    """Proof that `container`'s ports saw nothing in flight, or that `timeout` ran out first.
    Only `pipeline.drain.wait.drain` makes one, and a runtime stops a container only when
    handed one."""

    container: str
    ports: tuple[int, ...]
    complete: bool  # False: drain_timeout ended it with connections still open
    seconds: float
    started_at: float  # epoch seconds
    ended_at: float
    timeout: float
    handed_over: int = 0  # connections still open at the timeout, ended one by one


class Runtime(Protocol):
    """Images and containers, named by app and release, labelled with this home."""

    def ping(self) -> bool: ...

    # images
    def image_tag(self, app: str, commit: str) -> str: ...
    def has_image(self, tag: str) -> bool: ...
    def image_owner(self, reference: str) -> str | None: ...
    def build(self, image: ImageBuild) -> None: ...
    def pull(self, name: str, version: str, credentials: Credentials | None, output: Output) -> str:
        """Pull `name` at `version` (a tag or a digest) from its registry; its digest there.
        PullFailed with the registry's reason when it will not give it."""

    def check_login(self, registry: str, credentials: Credentials) -> None:
        """The registry accepts `credentials`; InvalidInput with its reason if not."""

    def untag(self, references: tuple[str, ...]) -> None:
        """Drop these names of images (a pulled image's registry name, once the app's own tag
        holds it), so that pruning the app's tag frees the image as it frees a built one."""

    def prune_images(self, app: str, keep: set[str]) -> list[str]: ...
    def fence_builds(self, max_pids: int, cpu_shares: int) -> bool:
        """Hold every build of this home to `max_pids` processes together, and weigh their
        CPU together at `cpu_shares` against the apps (0: either left alone); False where the
        host cannot (no writable cgroups)."""

    def data_root(self) -> str | None:
        """Where the engine keeps images and containers, a path on this host; None when it
        cannot say, or keeps them on another host."""

    # containers
    def container_name(self, app: str, number: int, role: str = "") -> str: ...
    def boot(self, spec: ContainerSpec, port: int) -> Instance:
        """Start a container that serves on `port` inside; the instance says where Traefik
        reaches it."""

    def start(self, spec: ContainerSpec) -> None:
        """Start a background process: no port, restarted by Docker if it exits."""

    def run_once(
        self,
        spec: ContainerSpec,
        command: str,
        output: Output,
        timeout: float,
        what: str = "release command",
    ) -> int:
        """Run `command` once, stream its output, return its exit code; `what` names it in
        the errors."""

    def run_attached(self, spec: ContainerSpec, stdin: bool, terminal: Terminal | None) -> Attached:
        """Start `spec.command` in a one-off container with its output attached, its stdin
        too with `stdin`, and a terminal of that size when given one (stdin included)."""

    def keep_running(self, name: str) -> None: ...
    def state(self, name: str) -> ContainerState: ...
    def logs_tail(self, name: str, lines: int = 20) -> str: ...
    def signal(self, name: str, signal: str) -> None:
        """Send `signal` ("SIGTERM") to the container's main process; NotFound when it is gone
        or out of reach."""

    def log_stream(
        self, container_id: str, since: int | None, tail: int | None, follow: bool
    ) -> LogStream:
        """The container's lines from `since` (nanoseconds, inclusive; None: its first),
        the last `tail` of them (None: all), and with `follow` the lines it prints next
        until it stops."""

    def stop(self, drained: Drained, stop_timeout: float) -> None: ...
    def discard(self, name: str) -> None: ...
    def containers(self, app: str | None = None) -> list[Container]:
        """This home's containers (with `app`, that app's only), running or not."""

    def volumes(self, app: str) -> list[str]:
        """The names of the app's named volumes on this home."""

    def remove_volume(self, name: str) -> None:
        """Remove a named volume and its data (none of that name: nothing to do)."""

    def nodes(self) -> list[Node]: ...
    def node_loss_seconds(self) -> float:
        """How long a lost node may still be listed as up: until then its containers are
        listed as running and just stop answering (0 for the one engine: it is this host)."""

    def watch(self, changed: Callable[[], None]) -> None:
        """Call `changed` when the runtime sees its containers change (Swarm's events)."""
