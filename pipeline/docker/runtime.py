"""The single-host Docker engine, through the docker SDK: the `pipeline.runtime.Runtime`
the deploy story runs on. Only `pipeline.docker` imports the SDK."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import docker
import docker.errors
import docker.types
import requests
import structlog

from pipeline.docker import build as docker_build
from pipeline.docker import logs as docker_logs
from pipeline.docker import oneoff
from pipeline.docker import pull as docker_pull
from pipeline.docker.build import first_line
from pipeline.docker.engine import LazyClient, being_removed, engine_errors, epoch_of
from pipeline.docker.removals import HeldRemovals
from pipeline.errors import (
    BootFailed,
    CommandTimedOut,
    Conflict,
    NotFound,
    ReleaseCommandFailed,
    RunFailed,
    RuntimeUnavailable,
    TempsError,
)
from pipeline.runtime import (
    LOOPBACK,
    Attached,
    Container,
    ContainerSpec,
    ContainerState,
    Credentials,
    Drained,
    ImageBuild,
    Instance,
    Limits,
    LogStream,
    Mount,
    Node,
    Output,
    Terminal,
)

log = structlog.get_logger()

API_TIMEOUT = 300
# Of Docker's default capabilities, those no web app needs: raw sockets (ARP and DNS
# spoofing of neighbours, ping floods), device nodes, the audit log, file capabilities.
# CHOWN, SETUID and SETGID stay, for entrypoints that drop to a user of their own.
DROPPED_CAPABILITIES = ("NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP")
# Whatever the engine's default driver, an app's output is rotated: 3 files of 10 MB, the
# older ones compressed. The local driver keeps the bytes as printed (json-file turns what is
# not UTF-8 into U+FFFD), and `temps logs` reads it through the engine's log API all the same.
LOG_DRIVER, LOG_OPTIONS = "local", {"max-size": "10m", "max-file": "3"}
# Containers of one home share one bridge with inter-container traffic off: an app reaches
# another only through Traefik, like any client. The host still reaches them (its packets
# leave by the bridge, they are not forwarded across it): Traefik, on the host, routes to
# each container's address there.
ISOLATED_BRIDGE = {"com.docker.network.bridge.enable_icc": "false"}
# A web container's label: the port its app serves on inside, which the listing reads.
PORT_LABEL = "temps.port"
# The length Docker shortens its ids to: enough to tell two starts of a container apart.
SHORT_ID = 12
# The SDK's base URL for an engine on a local unix socket (TCP, SSH and npipe differ).
LOCAL_ENGINE = "http+docker://localhost"
# Followed logs hold a connection each for as long as their client reads: they get a client
# of their own, so that they never take the connections deploys need.
LOG_CONNECTIONS = 100
# How long a removal another caller started is waited for.
REMOVAL_WAIT_SECONDS = 30.0
# What a one-off command printed is read whole before its container is removed, within this.
LOG_DRAIN_SECONDS = 30.0


def container_options(limits: Limits) -> dict[str, Any]:
    options: dict[str, Any] = {
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "pids_limit": limits.pids,
        "cap_drop": list(DROPPED_CAPABILITIES),
        "log_config": docker.types.LogConfig(type=LOG_DRIVER, config=LOG_OPTIONS),
    }
    if limits.memory_mb:
        options["mem_limit"] = f"{limits.memory_mb}m"
        options["memswap_limit"] = f"{limits.memory_mb}m"
    if limits.cpus:
        options["nano_cpus"] = int(limits.cpus * 1e9)
    return options


class DockerRuntime:
    """Web containers publish nothing: Traefik reaches each at its address on the home's
    bridge. With `publish_ports`, for a host where Traefik cannot reach the bridge, each is
    published on loopback instead, at a port Docker picks (and its proxy copies every byte)."""

    def __init__(
        self,
        instance: str,
        home_id: str,
        *,
        publish_ports: bool = False,
        build_engine: str = "",
        registry: str = "",
    ) -> None:
        self.instance = instance
        self.home_id = home_id
        self.publish_ports = publish_ports
        self.build_engine = build_engine
        self.registry = registry
        self._client = LazyClient(lambda: docker.from_env(timeout=API_TIMEOUT))
        # ssh:// through the system's ssh command, as the docker CLI does it.
        self._build_client = LazyClient(
            lambda: docker.DockerClient(
                base_url=build_engine,
                timeout=API_TIMEOUT,
                use_ssh_client=build_engine.startswith("ssh://"),
            ),
            "connect to the build engine",
        )
        self._log_client = LazyClient(
            lambda: docker.from_env(timeout=API_TIMEOUT, max_pool_size=LOG_CONNECTIONS)
        )
        self._network_name: str | None = None
        self._lock = threading.Lock()
        self._making_network = threading.Lock()
        # Image removals wait for the builds that run (pipeline.docker.removals says why).
        self.removals = HeldRemovals()

    @property
    def client(self) -> docker.DockerClient:
        return self._client.get()

    @property
    def build_client(self) -> docker.DockerClient:
        """The engine builds run on: another host's with `build_engine`, else this one."""
        return self._build_client.get() if self.build_engine else self.client

    @property
    def network_name(self) -> str:
        return f"temps-{self.home_id}"

    @property
    def log_client(self) -> docker.DockerClient:
        return self._log_client.get()

    def _network(self) -> str:
        """This home's bridge, made on first use (see ISOLATED_BRIDGE)."""
        with self._lock:
            if self._network_name is not None:
                return self._network_name
        name = self.network_name
        # One maker at a time: the engine's duplicate check does not stop containers booted
        # side by side from making three networks of one name.
        with self._making_network:
            try:
                self.client.networks.get(name)
            except docker.errors.NotFound:
                try:
                    self.client.networks.create(
                        name,
                        driver="bridge",
                        options=ISOLATED_BRIDGE,
                        labels={"temps.home": self.instance},
                        check_duplicate=True,
                    )
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:  # made meanwhile by another daemon of the home
                        reason = f"could not create network {name}: {exc.explanation}"
                        raise BootFailed(reason) from exc
        with self._lock:
            self._network_name = name
        return name

    def ping(self) -> bool:
        try:
            with engine_errors("ping"):
                return bool(self.client.ping())
        except RuntimeUnavailable:
            return False

    # images
    # Names carry the home's id: homes that share an engine never touch each other's apps.
    def image_tag(self, app: str, commit: str) -> str:
        return f"temps/{app}:{commit[:12]}-{self.home_id}"

    def container_name(self, app: str, number: int, role: str = "") -> str:
        return f"temps-{app}-v{number}{'-' + role if role else ''}-{self.home_id}"

    def has_image(self, tag: str) -> bool:
        with engine_errors("look up an image"):
            try:
                self.client.images.get(tag)
                return True
            except docker.errors.ImageNotFound:
                return False

    def image_owner(self, reference: str) -> str | None:
        """The app an image on the engine that builds was built for ("" for none of
        temps'), or None when that engine has no such image."""
        with engine_errors("look up an image"):
            try:
                attrs = self.build_client.api.inspect_image(reference)
            except (docker.errors.ImageNotFound, docker.errors.NotFound):
                return None
            except docker.errors.APIError:
                return None  # not a valid reference: the build itself will say so
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        return str(labels.get("temps.app", ""))

    def build(self, image: ImageBuild) -> None:
        with self.removals.building():
            self._build(image)

    def _build(self, image: ImageBuild) -> None:
        if not self.build_engine:
            docker_build.build(self.client, self.home_id, image, self.removals)
            return
        # Built and tagged there for the registry, pushed, pulled here by its digest and
        # tagged as if built here: pruning, rollbacks and the image's owner are as ever.
        shipped = f"{self.registry}/{image.tag}"
        image.output(f"-----> Building on {self.build_engine}, shipped through {self.registry}\n")
        docker_build.build(
            self.build_client, self.home_id, replace(image, tag=shipped), self.removals
        )
        repository, _, version = shipped.rpartition(":")
        digest = docker_build.push(self.build_client, repository, version, image.output)
        docker_pull.pull(self.client, repository, digest, None, image.output)
        local, _, tag = image.tag.rpartition(":")
        with engine_errors("tag an image"):
            self.client.api.tag(f"{repository}@{digest}", local, tag)
        docker_pull.untag(self.client, (f"{repository}@{digest}",))

    def pull(self, name: str, version: str, credentials: Credentials | None, output: Output) -> str:
        return docker_pull.pull(self.client, name, version, credentials, output)

    def check_login(self, registry: str, credentials: Credentials) -> None:
        docker_pull.check_login(self.client, registry, credentials)

    def untag(self, references: tuple[str, ...]) -> None:
        with engine_errors("untag an image"):
            docker_pull.untag(self.client, references)

    def fence_builds(self, max_pids: int, cpu_shares: int) -> bool:
        return docker_build.fence_builds(self.home_id, max_pids, cpu_shares)

    def data_root(self) -> str | None:
        """The engine's `DockerRootDir`, where its images, layers and containers are; None
        for an engine reached over TCP or SSH, whose paths are another host's."""
        with engine_errors("read the engine's data root"):
            if self.client.api.base_url != LOCAL_ENGINE:
                return None
            try:
                root = self.client.info().get("DockerRootDir")
            except docker.errors.APIError:
                return None
        return str(root) if root else None

    def prune_images(self, app: str, keep: set[str]) -> list[str]:
        """Remove this home's tags of the app's images that are not in `keep` (an image goes
        with its last tag; another home's tag keeps it), at once or, while a build runs, when
        the running builds end (pipeline.docker.removals); returns the tags removed or held."""
        ours = f"-{self.home_id}"
        with engine_errors("prune images"):
            # The low-level listing: `images.list` inspects every image once more.
            found = self.client.api.images(filters={"label": f"temps.app={app}"})
        tags = {tag for image in found for tag in image.get("RepoTags") or [] if tag.endswith(ours)}
        pruned = sorted(tags - keep)
        for tag in pruned:
            self.removals.remove(functools.partial(self._remove_tag, tag))
        return pruned

    def _remove_tag(self, tag: str) -> None:
        """The tag, and the image with it if it was the last (with the untagged parents that
        no other image needs); an image a container still uses is kept."""
        with engine_errors("prune images"):
            try:
                self.client.api.remove_image(tag, force=False, noprune=False)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: a container still uses it, kept
                    log.warning("runtime.prune_skipped", image=tag, error=str(exc))

    # containers
    def _run(self, spec: ContainerSpec, **options: Any) -> Any:
        """Start the spec's container (removing one left by that name); APIError passes."""
        self._remove_if_present(spec.name)
        return self.client.containers.run(spec.image, detach=True, **self._options(spec, options))

    def _options(self, spec: ContainerSpec, options: dict[str, Any]) -> dict[str, Any]:
        """What the spec's container is created with, `options` on top."""
        if spec.command:
            options.setdefault("command", list(spec.command))
        return {
            "name": spec.name,
            "init": True,
            "network": self._network(),
            "volumes": {
                self._volume(m, spec.labels): {"bind": m.path, "mode": "rw"} for m in spec.mounts
            },
            **container_options(spec.limits),
            **options,
        }

    def _volume(self, mount: Mount, labels: dict[str, str]) -> str:
        """The named volume, made with this home's labels the first time it is mounted."""
        try:
            self.client.volumes.get(mount.volume)
        except docker.errors.NotFound:
            app = labels.get("temps.app", "")
            owned = {"temps.home": self.instance, "temps.app": app, "temps.volume": mount.volume}
            self.client.volumes.create(mount.volume, labels=owned)
        return mount.volume

    def boot(self, spec: ContainerSpec, port: int) -> Instance:
        name = spec.name
        published = {"ports": {f"{port}/tcp": (LOOPBACK, None)}} if self.publish_ports else {}
        with engine_errors("start a container"):
            try:
                container = self._run(
                    spec,
                    environment={**spec.env, "PORT": str(port)},
                    labels={**spec.labels, "temps.home": self.instance, PORT_LABEL: str(port)},
                    **published,
                )
                container.reload()
            except docker.errors.APIError as exc:
                reason = f"container did not start: {first_line(exc.explanation)}"
                raise BootFailed(reason) from exc
        if container.status != "running":
            code = container.attrs["State"].get("ExitCode", -1)
            raise BootFailed(f"container exited with code {code} during boot", self.logs_tail(name))
        network = self._on_network(container.attrs["NetworkSettings"])
        endpoint = str(network.get("EndpointID") or "")[:SHORT_ID]
        if self.publish_ports:
            bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
            if not bindings:
                raise BootFailed(f"container {name} has no published port {port}")
            return Instance(name, int(bindings[0]["HostPort"]), LOOPBACK, endpoint)
        address = str(network.get("IPAddress") or "")
        if not address:
            raise BootFailed(f"container {name} has no address on {self.network_name}")
        return Instance(name, port, address, endpoint)

    def _on_network(self, settings: dict[str, Any] | None) -> dict[str, Any]:
        """The container's attachment to this home's bridge, from its `NetworkSettings`
        (as inspected or listed); {} while it has none (not running)."""
        networks = (settings or {}).get("Networks") or {}
        found: dict[str, Any] = networks.get(self.network_name) or {}
        return found

    def start(self, spec: ContainerSpec) -> None:
        """A background process: no port; Docker restarts it (with its back-off) if it exits."""
        with engine_errors("start a container"):
            try:
                self._run(
                    spec,
                    environment=spec.env,
                    labels={**spec.labels, "temps.home": self.instance},
                    restart_policy={"Name": "unless-stopped"},
                )
            except docker.errors.APIError as exc:
                reason = f"{spec.name} did not start: {first_line(exc.explanation)}"
                raise BootFailed(reason) from exc

    def run_once(
        self,
        spec: ContainerSpec,
        command: str,
        output: Output,
        timeout: float,
        what: str = "release command",
    ) -> int:
        """Run `command` in a one-off container, stream its output, return its exit code."""
        name = spec.name
        with engine_errors(f"run the {what}"):
            try:
                # A role of its own when the spec names one (a cron job's), else "release".
                labels = {"temps.role": "release", **spec.labels, "temps.home": self.instance}
                container = self._run(
                    spec, command=["/bin/sh", "-c", command], environment=spec.env, labels=labels
                )
            except docker.errors.APIError as exc:
                raise ReleaseCommandFailed(
                    f"{what} did not start: {first_line(exc.explanation)}"
                ) from exc
            streamer = threading.Thread(
                target=_stream_logs, args=(container, output), name=f"logs-{name}", daemon=True
            )
            streamer.start()
            began = time.monotonic()
            try:
                result = container.wait(timeout=timeout)
                # Its log ends with it: all of it is read before the container goes (a quick
                # command's lines were lost when its removal beat a busy streamer's request).
                streamer.join(timeout=LOG_DRAIN_SECONDS)
                return int(result.get("StatusCode", -1))
            except requests.exceptions.RequestException as exc:
                # The wait's read timing out comes as a ReadTimeout or, once the engine has
                # begun its answer, as a ConnectionError: told apart by the time it took.
                if time.monotonic() - began < timeout:
                    raise
                raise CommandTimedOut(f"{what} still running after {timeout:g}s") from exc
            finally:
                self._remove_if_present(name)
                streamer.join(timeout=5)

    def run_attached(self, spec: ContainerSpec, stdin: bool, terminal: Terminal | None) -> Attached:
        """A one-off run: never routed, removed by its caller (or at the daemon's next start,
        as an orphan, if the daemon dies first)."""
        labels = {**spec.labels, "temps.home": self.instance, "temps.role": "run"}
        with_input = stdin or terminal is not None
        try:
            with engine_errors("start a one-off container"):
                try:
                    # No container to remove first: a run's name is new each time.
                    options = self._options(
                        spec,
                        {
                            "environment": spec.env,
                            "labels": labels,
                            "stdin_open": with_input,
                            "tty": terminal is not None,
                        },
                    )
                    # Created, not run: with stdin the SDK then asks for StdinOnce too, so
                    # that the command reads the end of its stdin when its client sends it.
                    self.client.containers.create(spec.image, **options)
                    return oneoff.attach_and_start(self.client.api, spec.name, stdin, terminal)
                except docker.errors.APIError as exc:
                    reason = f"the one-off container did not start: {first_line(exc.explanation)}"
                    raise RunFailed(reason) from exc
        except TempsError:
            with contextlib.suppress(TempsError, docker.errors.DockerException):
                self.discard(spec.name)
            raise

    def keep_running(self, name: str) -> None:
        """A live slot comes back after a crash or an engine restart."""
        with engine_errors("update a container"):
            self.client.api.update_container(name, restart_policy={"Name": "unless-stopped"})

    def _inspect(self, name: str) -> dict[str, Any] | None:
        with engine_errors("inspect a container"):
            try:
                attrs: dict[str, Any] = self.client.api.inspect_container(name)
            except docker.errors.NotFound:
                return None
        return attrs

    def state(self, name: str) -> ContainerState:
        attrs = self._inspect(name)
        if attrs is None:
            return ContainerState("missing", -1)
        state = attrs["State"]
        return ContainerState(
            str(state["Status"]),
            int(state.get("ExitCode", 0)),
            epoch_of(str(state.get("StartedAt", ""))),
            int(attrs.get("RestartCount", 0)),
            str(attrs.get("Id", "")),
        )

    def signal(self, name: str, signal: str) -> None:
        with engine_errors("signal a container"):
            try:
                self.client.api.kill(name, signal=signal)
            except docker.errors.APIError as exc:  # NotFound, or not running
                raise NotFound(f"could not signal {name}: {exc.explanation}") from exc

    def logs_tail(self, name: str, lines: int = 20) -> str:
        with engine_errors("read container logs"):
            try:
                raw: bytes = self.client.api.logs(name, tail=lines, stdout=True, stderr=True)
            except docker.errors.NotFound:
                return ""
        return raw.decode("utf-8", "replace")

    def log_stream(
        self, container_id: str, since: int | None, tail: int | None, follow: bool
    ) -> LogStream:
        api = self.log_client.api
        return docker_logs.open_log(api, "containers", container_id, since, tail, follow)

    def stop(self, drained: Drained, stop_timeout: float) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout`, then remove: only once drained.

        The container is named by its drain, so nothing can stop a slot that may have served
        without draining it first (`retire.drain_and_stop` is the one caller)."""
        name = drained.container
        with engine_errors("stop a container"):
            try:
                self.client.api.stop(name, timeout=max(0, round(stop_timeout)))
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if not being_removed(exc):
                    raise NotFound(f"could not remove {name}: {exc.explanation}") from exc
        self.discard(name)

    def discard(self, name: str) -> None:
        """Kill and remove a slot that never got traffic, in one call: nothing to drain."""
        with engine_errors("remove a container"):
            try:
                self._remove_if_present(name)
            except docker.errors.APIError as exc:
                raise NotFound(f"could not remove {name}: {exc.explanation}") from exc

    def _remove_if_present(self, name: str) -> None:
        """Removed, or gone once another caller's removal of it ends (a one-off run removes
        its own container while a destroy removes every one of the app's)."""
        with contextlib.suppress(docker.errors.NotFound):
            try:
                self.client.api.remove_container(name, force=True)
            except docker.errors.APIError as exc:
                if not being_removed(exc):
                    raise
                deadline = time.monotonic() + REMOVAL_WAIT_SECONDS
                while time.monotonic() < deadline:
                    self.client.api.inspect_container(name)  # NotFound once it is gone
                    time.sleep(0.1)
                raise

    def containers(self, app: str | None = None) -> list[Container]:
        """Every container this home started (of `app`, when given), running or not, from
        one listing."""
        with engine_errors("list containers"):
            found = self.client.api.containers(all=True, filters={"label": self._labels(app)})
        return [self._listed(c) for c in found]

    def _listed(self, found: dict[str, Any]) -> Container:
        """A container as one listing shows it: a port Docker publishes is where it is
        reached (it was booted with published ports); else its address on the bridge and the
        port its label says it serves on."""
        network = self._on_network(found.get("NetworkSettings"))
        published = {
            int(p["PrivatePort"]): int(p["PublicPort"])
            for p in found.get("Ports") or []
            if p.get("PublicPort") and p.get("Type", "tcp") == "tcp"
        }
        address, ports = LOOPBACK, published
        if not published:
            address = str(network.get("IPAddress") or "")
            served = str((found.get("Labels") or {}).get(PORT_LABEL, ""))
            ports = {int(served): int(served)} if address and served.isdigit() else {}
        return Container(
            name=found["Names"][0].lstrip("/"),
            running=found["State"] == "running",
            ports=ports,
            address=address,
            # Restarting: Docker's back-off brings it back. Removing: gone in a moment, and
            # only then can a container of its name start.
            waiting=found["State"] in ("restarting", "removing"),
            endpoint=str(network.get("EndpointID") or "")[:SHORT_ID],
        )

    def _labels(self, app: str | None) -> list[str]:
        """The labels of this home's containers (and volumes), of one app when given."""
        return [f"temps.home={self.instance}", *([f"temps.app={app}"] if app else [])]

    def volumes(self, app: str) -> list[str]:
        with engine_errors("list volumes"):
            found = self.client.api.volumes(filters={"label": self._labels(app)})
        return sorted(str(volume["Name"]) for volume in (found or {}).get("Volumes") or [])

    def remove_volume(self, name: str) -> None:
        with engine_errors("remove a volume"):
            try:
                self.client.api.remove_volume(name)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                raise Conflict(f"could not remove volume {name}: {exc.explanation}") from exc

    def nodes(self) -> list[Node]:
        """The one engine, with this home's running containers."""
        with engine_errors("describe the engine"):
            name = str(self.client.info().get("Name", "localhost"))
        running = tuple(sorted(c.name for c in self.containers() if c.running))
        return [Node(name, "engine", "ready", "active", LOOPBACK, running)]

    def node_loss_seconds(self) -> float:
        """The one engine is this host: when it is lost, so is the daemon."""
        return 0.0

    def watch(self, changed: Callable[[], None]) -> None:
        """The supervisor's tick follows the one engine's containers: nothing more to watch."""


def _stream_logs(container: Any, output: Output) -> None:
    try:
        for line in container.logs(stream=True, follow=True):
            output(line.decode("utf-8", "replace"))
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return
