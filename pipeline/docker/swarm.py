"""Docker Swarm, through the docker SDK: the `pipeline.runtime.Runtime` for a Swarm manager.

Each container the deploy story asks for is a Swarm service of one task. Swarm places it on a
node (the app's `[swarm] constraints`, then the node with the fewest tasks), restarts it with
its back-off, and starts it again elsewhere when its node is lost; temps chooses when it
starts and when it stops. A web task publishes its port in host mode with no fixed number,
so every task gets a port of its own on its node and Traefik reaches it at
`<node address>:<port>`. A service of N tasks would not do: Swarm scales one down by stopping
a task of its own choosing, at once, where temps must take a task out of the route and drain
it first.

Images are built on the manager and pushed to the registry every node pulls from; a service
names its image by digest, so every node runs the very bytes that were built. The release
phase runs once, on the manager's engine, beside the build.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import docker.errors
import docker.types
import requests
import structlog

from pipeline.docker import logs as docker_logs
from pipeline.docker.build import first_line
from pipeline.docker.engine import engine_errors, epoch_of
from pipeline.docker.runtime import (
    DROPPED_CAPABILITIES,
    LOG_DRIVER,
    LOG_OPTIONS,
    DockerRuntime,
)
from pipeline.errors import BootFailed, BuildFailed, NotFound, RuntimeUnavailable
from pipeline.polling import poll_until
from pipeline.runtime import (
    Backend,
    Container,
    ContainerSpec,
    ContainerState,
    Drained,
    ImageBuild,
    Instance,
    LogStream,
    Node,
    Output,
)

log = structlog.get_logger()

BOOT_TIMEOUT = 180.0  # a task's image pull on a node that never ran the app
UNPLACEABLE_SECONDS = 10.0  # a task no node can take fails its boot after this long
POLL_SECONDS = 0.1
REAP_SECONDS = 20.0  # beyond the stop grace: Swarm deletes a stopped task of a scaled-down slot
# A manager declares a node down once it has missed heartbeats for three periods, each period
# drawn up to half a second longer than the swarm's HeartbeatPeriod (swarmkit's dispatcher);
# one more second covers the listing that reports it.
HEARTBEATS_MISSED = 3
HEARTBEAT_EPSILON = 0.5
DEFAULT_HEARTBEAT = 5.0  # seconds, when the swarm's spec does not say
MAX_SERVICE_NAME = 63  # Swarm's rule: a service name is a DNS label
SERVICE_NAME_HASH = 10
# A task's state as the container states the gate and the listings know.
STATE_OF_TASK = {
    "running": "running",
    "complete": "exited",
    "failed": "exited",
    "shutdown": "exited",
    "rejected": "dead",
    "orphaned": "dead",
    "remove": "exited",
}


class SwarmRuntime(DockerRuntime):
    def __init__(self, instance: str, home_id: str, registry: str) -> None:
        super().__init__(instance, home_id)
        self.registry = registry
        self._digests: dict[str, str] = {}

    def container_name(self, app: str, number: int, role: str = "") -> str:
        """A service's name is a DNS label, 63 characters at most: a longer one (a preview's
        app name is up to 63 itself) keeps the start of the app's name and a hash of the
        whole name, so that it stays the same for the same release and differs for others."""
        name = super().container_name(app, number, role)
        if len(name) <= MAX_SERVICE_NAME:
            return name
        suffix = f"-v{number}{'-' + role if role else ''}-{self.home_id}"
        digest = hashlib.sha256(name.encode()).hexdigest()[:SERVICE_NAME_HASH]
        room = MAX_SERVICE_NAME - len("temps-") - len(suffix) - len(digest) - 1
        return f"temps-{app[: max(room, 1)].rstrip('-')}-{digest}{suffix}"

    # images: built here, pushed to the registry, run by digest
    def image_tag(self, app: str, commit: str) -> str:
        return f"{self.registry}/temps/{app}:{commit[:12]}-{self.home_id}"

    def build(self, image: ImageBuild) -> None:
        super().build(image)
        self._pinned(image.tag, image.output)

    def _pinned(self, tag: str, output: Output | None = None) -> str:
        """The image by digest in the registry, pushed first if the registry lacks it."""
        if tag in self._digests:
            return self._digests[tag]
        repository, _, version = tag.rpartition(":")
        with engine_errors("push an image"):
            for chunk in self.client.api.push(repository, tag=version, stream=True, decode=True):
                if "error" in chunk:
                    raise BuildFailed(f"push to {self.registry} failed: {chunk['error']}")
            attrs = self.client.api.inspect_image(tag)
        digests = [d for d in attrs.get("RepoDigests") or [] if d.startswith(f"{repository}@")]
        if not digests:
            raise BuildFailed(f"{self.registry} gave no digest for {tag}")
        if output is not None:
            output(f"-----> Pushed {digests[0]}\n")
        self._digests[tag] = digests[0]
        return str(digests[0])

    # services
    def boot(self, spec: ContainerSpec, port: int) -> Instance:
        published = [{"TargetPort": port, "Protocol": "tcp", "PublishMode": "host"}]
        self._create(spec, {**spec.env, "PORT": str(port)}, published)
        task = self._running_task(spec.name)
        ports = _published(task)
        if port not in ports:
            raise BootFailed(f"{spec.name} has no published port {port}")
        return Instance(spec.name, ports[port], self._address_of(str(task["NodeID"])))

    def start(self, spec: ContainerSpec) -> None:
        self._create(spec, spec.env, [])
        self._running_task(spec.name)

    def _create(self, spec: ContainerSpec, env: dict[str, str], ports: list[Any]) -> None:
        labels = {**spec.labels, "temps.home": self.instance}
        limits = docker.types.Resources(
            mem_limit=spec.limits.memory_mb * 1024 * 1024 if spec.limits.memory_mb else None,
            cpu_limit=int(spec.limits.cpus * 1e9) if spec.limits.cpus else None,
        )
        limits["Limits"]["Pids"] = spec.limits.pids
        container = docker.types.ContainerSpec(
            self._pinned(spec.image),
            command=list(spec.command) or None,
            env=env,
            labels=labels,
            mounts=[
                docker.types.Mount(m.path, m.volume, type="volume", labels=labels)
                for m in spec.mounts
            ],
            stop_grace_period=int(spec.stop_timeout * 1e9),
            init=True,
            cap_drop=list(DROPPED_CAPABILITIES),
        )
        template = docker.types.TaskTemplate(
            container,
            resources=limits,
            restart_policy=docker.types.RestartPolicy("any", delay=int(1e9)),
            placement=docker.types.Placement(
                constraints=list(spec.placement.get(Backend.SWARM, ()))
            ),
            log_driver={"Name": LOG_DRIVER, "Options": LOG_OPTIONS},
        )
        if self._is_service(spec.name):  # left by a daemon that stopped mid-boot
            self._retire(spec.name, spec.stop_timeout)
        with engine_errors("create a service"):
            try:
                self.client.api.create_service(
                    template,
                    name=spec.name,
                    labels=labels,
                    mode=docker.types.ServiceMode("replicated", replicas=1),
                    endpoint_spec=docker.types.EndpointSpec(mode="dnsrr", ports=ports),
                )
            except docker.errors.APIError as exc:
                raise BootFailed(f"service did not start: {first_line(exc.explanation)}") from exc

    def _running_task(self, name: str) -> dict[str, Any]:
        """Its task once running; a task that failed or that no node can take fails it."""
        started = time.monotonic()
        while time.monotonic() - started < BOOT_TIMEOUT:
            tasks = self._tasks(name)
            for task in tasks:
                status = task.get("Status") or {}
                state = status.get("State", "")
                if state == "running" and task.get("DesiredState") == "running":
                    return task
                if state in ("failed", "rejected"):
                    code = (status.get("ContainerStatus") or {}).get("ExitCode")
                    why = f"exited with code {code}" if code else status.get("Err", state)
                    raise BootFailed(f"task of {name} {why} during boot", self.logs_tail(name))
                unplaced = state == "pending" and "no suitable node" in status.get("Err", "")
                if unplaced and time.monotonic() - started > UNPLACEABLE_SECONDS:
                    raise BootFailed(f"no node can run {name}: {status['Err']}")
            time.sleep(POLL_SECONDS)
        raise BootFailed(f"the task of {name} was not running after {BOOT_TIMEOUT:g}s")

    def _tasks(self, name: str) -> list[dict[str, Any]]:
        with engine_errors("list tasks"):
            try:
                tasks: list[dict[str, Any]] = self.client.api.tasks(filters={"service": name})
            except docker.errors.NotFound:
                return []
        # Newest first: the task Swarm runs now, then the ones it replaced.
        return sorted(tasks, key=lambda t: int((t.get("Version") or {}).get("Index", 0)))[::-1]

    def _address_of(self, node_id: str) -> str:
        with engine_errors("inspect a node"):
            node = self.client.api.inspect_node(node_id)
        return str((node.get("Status") or {}).get("Addr", ""))

    def keep_running(self, name: str) -> None:
        """A service restarts its task whatever stopped it: nothing to change."""

    def state(self, name: str) -> ContainerState:
        tasks = self._tasks(name)
        if not tasks:
            return super().state(name)  # a release command's container, on the manager
        status = tasks[0].get("Status") or {}
        state = STATE_OF_TASK.get(status.get("State", ""), "created")
        if state != "running" and len(tasks) > 1 and tasks[0].get("DesiredState") == "running":
            state = "restarting"
        code = int((status.get("ContainerStatus") or {}).get("ExitCode") or 0)
        started = epoch_of(str(status.get("Timestamp", ""))) if state == "running" else None
        service = str(tasks[0].get("ServiceID", ""))
        return ContainerState(state, code, started, restarts=len(tasks) - 1, id=service)

    def signal(self, name: str, signal: str) -> None:
        """A service's task is signalled where this engine can reach its container (on the
        manager); a task on another node is out of reach (NotFound)."""
        tasks = self._tasks(name)
        if not tasks:
            return super().signal(name, signal)
        status = tasks[0].get("Status") or {}
        container = str((status.get("ContainerStatus") or {}).get("ContainerID") or "")
        if not container:
            raise NotFound(f"{name} has no running task to signal")
        super().signal(container, signal)

    def logs_tail(self, name: str, lines: int = 20) -> str:
        with engine_errors("read service logs"):
            try:
                raw = self.client.api.service_logs(
                    name, stdout=True, stderr=True, tail=lines, follow=False
                )
                return b"".join(raw).decode("utf-8", "replace")
            except docker.errors.NotFound:
                return super().logs_tail(name, lines)
            except docker.errors.APIError:
                return ""

    def log_stream(
        self, container_id: str, since: int | None, tail: int | None, follow: bool
    ) -> LogStream:
        """A service's log: every task it ran, whichever node ran it."""
        api = self.log_client.api
        try:
            return docker_logs.open_log(api, "services", container_id, since, tail, follow)
        except NotFound:  # a container of the manager's own (a release command)
            return super().log_stream(container_id, since, tail, follow)

    def stop(self, drained: Drained, stop_timeout: float) -> None:
        """Its task gets SIGTERM, then SIGKILL after the service's grace period; the service
        goes once the task has stopped."""
        if self._is_service(drained.container):
            self._retire(drained.container, stop_timeout)
        else:
            super().stop(drained, stop_timeout)

    def discard(self, name: str) -> None:
        if self._is_service(name):
            self._retire(name, 0.0)
        else:
            super().discard(name)

    def _retire(self, name: str, stop_timeout: float) -> None:
        """Scale to nothing, wait until Swarm has deleted the tasks, then remove the service.

        Removing a service while Swarm's task reaper deletes its tasks can crash the manager:
        Docker 20.10's swarmkit dereferences a task that is gone (SetServiceTasksRemove), and
        a scaled-down task is reaped the moment it stops. With no task left, nothing races."""
        with engine_errors("stop a service"):
            try:
                self.client.services.get(name).scale(0)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                raise NotFound(f"could not stop {name}: {exc.explanation}") from exc
        poll_until(lambda: not self._tasks(name), stop_timeout + REAP_SECONDS, POLL_SECONDS * 2)
        self._remove_service(name)

    def _is_service(self, name: str) -> bool:
        with engine_errors("inspect a service"):
            try:
                self.client.api.inspect_service(name)
            except docker.errors.NotFound:
                return False
        return True

    def _remove_service(self, name: str) -> None:
        with engine_errors("remove a service"), contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_service(name)

    def containers(self, app: str | None = None) -> list[Container]:
        """Every service this home made (of `app`, when given), with its running task where
        it runs now, and the manager's own containers of this home (release commands)."""
        with engine_errors("list services"):
            services = self.client.api.services(filters={"label": self._labels(app)})
            tasks = self.client.api.tasks(filters={"desired-state": "running"})
            nodes = {n["ID"]: n for n in self.client.api.nodes()}
        running: dict[str, dict[str, Any]] = {}
        for task in tasks:
            node = nodes.get(str(task.get("NodeID", ""))) or {}
            ready = (node.get("Status") or {}).get("State") == "ready"
            if ready and (task.get("Status") or {}).get("State") == "running":
                running[str(task["ServiceID"])] = task
        found = []
        for service in services:
            name = str(service["Spec"]["Name"])
            task = running.get(str(service["ID"]))
            if task is None:
                # Swarm keeps its services' tasks running: it places this one again itself.
                found.append(Container(name, False, {}, waiting=True))
                continue
            address = (nodes[str(task["NodeID"])].get("Status") or {}).get("Addr", "")
            found.append(Container(name, True, _published(task), str(address)))
        return found + super().containers(app)

    def nodes(self) -> list[Node]:
        """The Swarm's nodes, each with this home's services running on it."""
        with engine_errors("list nodes"):
            nodes = self.client.api.nodes()
            services = {
                str(s["ID"]): str(s["Spec"]["Name"])
                for s in self.client.api.services(filters={"label": f"temps.home={self.instance}"})
            }
            tasks = self.client.api.tasks(filters={"desired-state": "running"})
        on: dict[str, list[str]] = {}
        for task in tasks:
            service = services.get(str(task.get("ServiceID", "")))
            if service is not None:
                on.setdefault(str(task.get("NodeID", "")), []).append(service)
        return [
            Node(
                name=str(node["Description"]["Hostname"]),
                role=str(node["Spec"].get("Role", "")),
                state=str(node["Status"].get("State", "")),
                availability=str(node["Spec"].get("Availability", "")),
                address=str(node["Status"].get("Addr", "")),
                containers=tuple(sorted(on.get(str(node["ID"]), []))),
            )
            for node in nodes
        ]

    def node_loss_seconds(self) -> float:
        """How long after a node's last heartbeat the manager may still list it as ready."""
        with engine_errors("inspect the swarm"):
            spec = self.client.api.inspect_swarm().get("Spec") or {}
        nanoseconds = (spec.get("Dispatcher") or {}).get("HeartbeatPeriod")
        period = int(nanoseconds) / 1e9 if nanoseconds else DEFAULT_HEARTBEAT
        return HEARTBEATS_MISSED * (period + HEARTBEAT_EPSILON) + 1.0

    def watch(self, changed: Callable[[], None]) -> None:
        """Call `changed` at every node and service event: a node lost or back, a task
        rescheduled. The supervisor then looks at once instead of at its next tick."""
        threading.Thread(
            target=self._follow_events, args=(changed,), name="swarm-events", daemon=True
        ).start()

    def _follow_events(self, changed: Callable[[], None]) -> None:
        while True:
            try:
                with engine_errors("follow events"):
                    events = self.client.events(decode=True, filters={"type": ["node", "service"]})
                    for event in events:
                        log.info(
                            "swarm.event",
                            type=event.get("Type"),
                            action=event.get("Action"),
                            name=(event.get("Actor") or {}).get("Attributes", {}).get("name"),
                        )
                        changed()
            except (
                RuntimeUnavailable,
                docker.errors.DockerException,
                requests.exceptions.RequestException,
            ) as exc:  # a quiet stream times out too: follow it again
                log.info("swarm.events_lost", error=str(exc))
            time.sleep(1.0)


def _published(task: dict[str, Any]) -> dict[int, int]:
    """Inner port to the port published on the task's node (host mode).

    A port is listed once per binding, IPv4's first, then IPv6's, and the two may have
    different numbers: the first is the one reached at the node's IPv4 address."""
    ports = ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []
    found: dict[int, int] = {}
    for port in ports:
        if port.get("PublishedPort") and port.get("Protocol", "tcp") == "tcp":
            found.setdefault(int(port["TargetPort"]), int(port["PublishedPort"]))
    return found
