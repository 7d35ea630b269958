"""Where each web container of a slot runs now (pipeline.steps.replicas), from the runtime's
listing and nodes built in memory: where the record put it, where it runs now, and whether it
went with its node.
"""

from __future__ import annotations

from pipeline.runtime import Container, Instance, Node, Slot
from pipeline.steps.replicas import Placement, Whereabouts, place, recorded_as

W1, W2 = "10.0.0.11", "10.0.0.12"
WEB1 = Instance("shop-v3", 30001, W1)


def node(address: str, state: str = "ready", availability: str = "active") -> Node:
    return Node(f"node-{address[-2:]}", "worker", state, availability, address, ())


def test_a_container_running_where_recorded_is_running_there() -> None:
    seen = Container("shop-v3", True, {8000: 30001}, W1)
    assert place(WEB1, seen, 8000, {}, {}) == Placement(WEB1, Whereabouts.RUNNING, WEB1)


def test_a_container_rescheduled_off_a_lost_node_runs_at_its_new_address() -> None:
    seen = Container("shop-v3", True, {8000: 30007}, W2)
    placed = place(WEB1, seen, 8000, {W1: node(W1, "down")}, {})
    assert placed.whereabouts is Whereabouts.RUNNING and placed.node_lost
    assert placed.now == Instance("shop-v3", 30007, W2)


def test_a_container_not_running_is_lost_when_its_node_is_down_and_stopped_otherwise() -> None:
    gone = Container("shop-v3", False, {})
    lost = place(WEB1, gone, 8000, {W1: node(W1, "down")}, {})
    assert (lost.whereabouts, lost.detail) == (
        Whereabouts.LOST,
        "its node node-11 (10.0.0.11) is down",
    )
    assert place(WEB1, gone, 8000, {}, {}).whereabouts is Whereabouts.STOPPED
    assert place(WEB1, None, 8000, {}, {}).whereabouts is Whereabouts.STOPPED


def test_a_container_on_a_drained_node_is_the_infrastructure_s_to_move() -> None:
    seen = Container("shop-v3", True, {8000: 30001}, W1)
    placed = place(WEB1, seen, 8000, {W1: node(W1, availability="drain")}, {})
    assert (placed.whereabouts, placed.now) == (Whereabouts.LOST, None)
    assert placed.detail.endswith("is drained")


def test_the_node_it_was_last_seen_on_counts_when_the_record_lags_behind() -> None:
    moved = Instance("shop-v3", 30007, W2)  # seen there, not yet recorded, then W2 was lost
    placed = place(WEB1, Container("shop-v3", False, {}), 8000, {W2: node(W2, "down")},
                   {"shop-v3": moved})  # fmt: skip
    assert placed.whereabouts is Whereabouts.LOST


def test_a_flip_back_records_the_containers_that_serve_where_they_serve_now() -> None:
    web2 = Instance("shop-v3-web2", 30002, W2)
    now = Instance("shop-v3", 30009, W2)
    assert recorded_as(Slot((WEB1, web2)), [now]) == Slot((now, web2))
