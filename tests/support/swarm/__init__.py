"""A real Docker Swarm of several nodes on this one machine, for the Swarm runtime's e2e tests.

    with swarm_cluster(workers=2, tmp=tmp_path) as cluster:
        ref = cluster.push_image("temps-test/busybox:latest", "temps/busybox")
        cluster.manager.client().services.create(ref, ...)
        cluster.kill_node("w1")

Each worker is a real dockerd in its own network namespace (own iptables, docker0, swarm
agent), wired by a veth to a private bridge on the host. The host engine is the manager
(or, with `host_manager=False`, one more namespaced dockerd, for when the host engine is
busy). Namespaces rather than docker-in-docker: no node image to build, and every process
of a node is found by its namespace and cgroup, so a node can be killed for real.

`kill_node` is the loss of a machine: the node's link goes down first (the manager gets
no FIN or RST), then every process of the node is SIGKILLed, dockerd, containerd, the shims
and the containers themselves, which would otherwise outlive dockerd under their shims.

A `docker-registry` on the host serves images to every engine under one name,
`127.0.0.1:<port>/...`, since Docker trusts loopback registries without TLS; inside each
namespace a small forwarder carries that loopback port to the host.

Every name made here starts with the settings' prefix (`tswarm`), so a crashed run's
leftovers are found and removed by `sweep` when the next cluster starts:

    host: bridge tswarm0 10.231.0.1/24, registry 0.0.0.0:<port>, iptables rules "tswarm-harness"
      └─ veth tswarm-w1 ── netns tswarm-w1: eth0 10.231.0.11, forwarder, dockerd (+containerd)
    /run/tswarm/<node>/   exec-root, docker.sock, pidfile, the node's /etc/docker, /run/containerd
    <tmp>/<node>/         data-root, dockerd.log
    cgroup /tswarm-<node> the node's containers (--cgroup-parent)

Run by `ip netns exec`, dockerd gets a private mount namespace (a slave of the host's) with a
sysfs of its namespace but no cgroup mounts; `launch` mounts those again and hides the
host's /etc/docker (key.json, daemon.json) and /run/containerd (shim sockets, runc state)
behind per-node directories. Mounts made by a node stay in its namespace and vanish with it.

The package, by concern: `settings` (names, addresses, the records of nodes and engines),
`cluster` (`swarm_cluster`, bring-up, the swarm itself, `SwarmCluster`), `host` (bridge and
registry), `node` (starting and killing namespaced engines), `sweep` (teardown), `helpers`,
and `launch` (what runs inside a namespace: `python -m tests.support.swarm launch|forward`,
by way of `__main__`).
"""

from tests.support.swarm.cluster import SwarmCluster, swarm_cluster
from tests.support.swarm.host import push_image
from tests.support.swarm.launch import main
from tests.support.swarm.settings import (
    HOST_SOCKET,
    NODE_LABEL,
    REGISTRY_BINARY,
    SWARM_PORT,
    TASK_LABEL,
    TESTS_DIR,
    SwarmHarnessError,
    SwarmNode,
    SwarmSettings,
)
from tests.support.swarm.sweep import sweep

__all__ = [
    "HOST_SOCKET",
    "NODE_LABEL",
    "REGISTRY_BINARY",
    "SWARM_PORT",
    "TASK_LABEL",
    "TESTS_DIR",
    "SwarmCluster",
    "SwarmHarnessError",
    "SwarmNode",
    "SwarmSettings",
    "main",
    "push_image",
    "swarm_cluster",
    "sweep",
]
