"""An app's formation (pipeline.release.formation): the counts a change may set, the background
processes a release runs, and a release's containers kept on its record and read back.

Releases are built in memory. Their slot is written with the module's own functions and read
back with `slot_of`, `workers_of` and `containers_of`: how the record stores it is the
module's business.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.app import procfile
from pipeline.app.config import AppConfig
from pipeline.errors import InvalidInput
from pipeline.release import formation
from pipeline.release.records import SlotRecord
from pipeline.release.states import ReleaseState
from pipeline.runtime import LOOPBACK, Instance, Slot
from pipeline.sqlite.models import Release, ReleaseSource

# Containers on the home's bridge: each at its own address, on the port its app serves on.
BRIDGE = Slot(
    (
        Instance("temps-shop-v3-ab12", 8000, "172.20.0.2", "0123456789ab"),
        Instance("temps-shop-v3-web2-ab12", 8000, "172.20.0.3", "ba9876543210"),
    )
)
THREE = Slot(
    (
        Instance("temps-shop-v3-ab12", 41001),
        Instance("temps-shop-v3-web2-ab12", 41002),
        Instance("temps-shop-v3-web3-ab12", 41003),
    )
)


def release(**fields: Any) -> Release:
    return Release(
        app_id=1, number=3, source=ReleaseSource.PUSH, commit="c0ffee",
        state=ReleaseState.LIVE, **fields,
    )  # fmt: skip


def booted(slot: Slot, workers: dict[str, list[str]] | None = None) -> Release:
    """A release as boot and the workers' start leave it: its slot and workers recorded."""
    booted = release(container=slot.first.container, host_port=slot.first.port)
    booted.slot = formation.slot_record(slot)
    if workers is not None:
        booted.slot = formation.with_workers(booted, workers)
    return booted


@pytest.mark.parametrize(
    ("wanted", "count"), [(None, 1), ({}, 1), ({"worker": 4}, 1), ({"web": 3}, 3)]
)
def test_web_runs_one_container_unless_the_formation_says_otherwise(
    wanted: dict[str, Any] | None, count: int
) -> None:
    assert formation.web_count(wanted) == count


@pytest.mark.parametrize(
    ("current", "changes", "merged"),
    [
        ({}, {"worker": 2}, {"web": 1, "worker": 2}),
        ({"web": 3, "worker": 1}, {"web": 2}, {"web": 2, "worker": 1}),
        ({"worker": 2}, {"worker": 0}, {"web": 1, "worker": 0}),
        ({}, {"web": formation.MAX_CONTAINERS}, {"web": formation.MAX_CONTAINERS}),
    ],
)
def test_a_change_is_laid_over_the_current_formation(
    current: dict[str, Any], changes: dict[str, Any], merged: dict[str, int]
) -> None:
    before = dict(current)
    assert formation.checked(current, changes) == merged
    assert current == before


def test_web_is_always_known_and_other_types_must_be_the_live_release_s() -> None:
    assert formation.checked({}, {"web": 2}, known=set()) == {"web": 2}
    assert formation.checked({}, {"worker": 3}, known={"worker"}) == {"web": 1, "worker": 3}
    with pytest.raises(InvalidInput) as refused:
        formation.checked({}, {"clock": 1}, known={"worker", "mailer"})
    assert str(refused.value) == (
        "unknown process type 'clock': the live release runs mailer, web, worker "
        "(process types come from the Procfile)"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Web": 2}, "invalid process type 'Web'"),
        ({"x" * 100 + "!": 1}, f"invalid process type {'x' * 64!r}:"),
        ({"web": 0}, "web runs 1 to 20 containers, got 0"),
        ({"web": 21}, "web runs 1 to 20 containers, got 21"),
        ({"worker": -1}, "worker runs 0 to 20 containers, got -1"),
        ({"web": True}, "the count of web must be a whole number, got True"),
        ({"web": 2.0}, "the count of web must be a whole number, got 2.0"),
        ({"worker": "2"}, "the count of worker must be a whole number, got '2'"),
    ],
)
def test_a_change_out_of_bounds_is_refused_with_what_is_wrong(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        formation.checked({"web": 2}, changes)
    assert str(refused.value).startswith(message)


def test_each_background_process_of_the_procfile_runs_once_unless_the_formation_says() -> None:
    config = procfile.applied(
        AppConfig(), "web: serve\nworker: work\nclock: tick\nrelease: migrate\n"
    )
    assert formation.background(config, None) == {"worker": 1, "clock": 1}
    wanted = {"web": 3, "worker": 2, "gone": 4}  # `gone` left the Procfile: it runs no more
    assert formation.background(config, wanted) == {"worker": 2, "clock": 1}
    assert formation.background(AppConfig(), {"worker": 2}) == {}


@pytest.mark.parametrize(
    "slot",
    [
        THREE,
        Slot((Instance("temps-shop-v3-ab12", 41001),)),
        Slot(
            (Instance("temps-shop-v3-ab12", 30001, "10.0.0.7"), Instance("w2", 30002, "10.0.0.8"))
        ),
        BRIDGE,
    ],
    ids=["three-web", "one-web", "swarm-nodes", "bridge"],
)
def test_a_recorded_slot_reads_back_as_it_was_booted(slot: Slot) -> None:
    assert formation.slot_of(booted(slot)) == slot


def test_a_web_entry_keeps_its_keys_and_one_recorded_before_the_bridge_reads_on_loopback() -> None:
    recorded = booted(BRIDGE)
    assert recorded.slot is not None
    assert recorded.slot.model_dump(mode="json")["web"][0] == {
        "container": "temps-shop-v3-ab12",
        "host_port": 8000,
        "address": "172.20.0.2",
        "endpoint": "0123456789ab",
    }
    published = SlotRecord.model_validate({"web": [{"container": "c", "host_port": 41001}]})
    assert published.slot == Slot((Instance("c", 41001, LOOPBACK, ""),))
    assert published.model_dump(mode="json") == {"web": [{"container": "c", "host_port": 41001}]}


def test_a_release_recorded_before_slots_has_its_one_container_as_its_slot() -> None:
    legacy = release(container="temps-shop-v3-ab12", host_port=41001)
    assert formation.slot_of(legacy) == Slot((Instance("temps-shop-v3-ab12", 41001, LOOPBACK),))
    assert formation.containers_of(legacy) == ["temps-shop-v3-ab12"]


def test_a_release_that_never_booted_has_no_slot() -> None:
    assert formation.slot_of(release()) is None
    assert formation.containers_of(release()) == []
    # Moved to booting with its container's name, not yet given a port.
    starting = release(container="temps-shop-v3-ab12")
    assert formation.slot_of(starting) is None
    assert formation.containers_of(starting) == ["temps-shop-v3-ab12"]


def test_workers_are_kept_beside_the_web_slot_and_read_back_by_process_type() -> None:
    workers = {"worker": ["temps-shop-v3-worker-1-ab12", "temps-shop-v3-worker-2-ab12"],
               "clock": ["temps-shop-v3-clock-1-ab12"]}  # fmt: skip
    running = booted(THREE, workers)
    assert formation.slot_of(running) == THREE
    assert formation.workers_of(running) == workers
    assert formation.containers_of(running) == [
        "temps-shop-v3-ab12", "temps-shop-v3-web2-ab12", "temps-shop-v3-web3-ab12",
        "temps-shop-v3-worker-1-ab12", "temps-shop-v3-worker-2-ab12",
        "temps-shop-v3-clock-1-ab12",
    ]  # fmt: skip


def test_workers_taken_off_a_record_leave_its_web_slot_alone() -> None:
    running = booted(THREE, {"worker": ["temps-shop-v3-worker-1-ab12"]})
    running.slot = formation.with_workers(running, {})
    assert formation.workers_of(running) == {}
    assert formation.slot_of(running) == THREE


def test_workers_of_a_release_without_a_web_slot_are_recorded_alone() -> None:
    bare = release()
    bare.slot = formation.with_workers(bare, {"worker": ["w1"]})
    assert formation.slot_of(bare) is None
    assert formation.containers_of(bare) == ["w1"]


def test_a_new_web_slot_keeps_the_workers_of_the_release_it_is_recorded_for() -> None:
    running = booted(THREE, {"worker": ["temps-shop-v3-worker-1-ab12"]})
    scaled = Slot(THREE.instances[:1])
    running.slot = formation.slot_record(scaled, running)
    assert formation.slot_of(running) == scaled
    assert formation.workers_of(running) == {"worker": ["temps-shop-v3-worker-1-ab12"]}
    # Without the release, the record has the web slot only.
    running.slot = formation.slot_record(scaled)
    assert formation.workers_of(running) == {}


def test_the_record_s_own_container_comes_first_when_the_slot_does_not_name_it() -> None:
    """Boot names the first container on the record before the slot is written; a release
    whose slot moved on (a rolling deploy's) still lists that container to remove."""
    moved = booted(Slot(THREE.instances[1:]))
    moved.container = THREE.first.container
    assert formation.containers_of(moved) == [i.container for i in THREE.instances]
