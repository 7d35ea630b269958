"""What a slot on its way out is made of (pipeline.steps.retire.Leaving), read off a release
built in memory: which containers go, the ports and address each one is drained on, and the
timeouts of the config the release ran with.
"""

from __future__ import annotations

from pipeline.app.config import AppConfig, load_toml
from pipeline.release import formation
from pipeline.release.states import ReleaseState
from pipeline.runtime import LOOPBACK, Instance, Slot
from pipeline.sqlite.models import Release, ReleaseSource
from pipeline.steps.retire import Leaving

CONFIG = load_toml(
    '[deploy]\ndrain_timeout = 12\nstop_timeout = 4\nhandover_window = "1m"\n'
    'handover_signal = "SIGUSR1"\n'
)
SLOT = Slot((Instance("shop-v3", 41001), Instance("shop-v3-web2", 41002)))


def release(slot: Slot | None = None, workers: dict[str, list[str]] | None = None) -> Release:
    made = Release(
        id=7, app_id=1, number=3, source=ReleaseSource.PUSH, commit="c0ffee",
        state=ReleaseState.LIVE, config=CONFIG,
    )  # fmt: skip
    if slot is not None:
        made.container, made.host_port = slot.first.container, slot.first.port
        made.slot = formation.slot_record(slot)
    if workers is not None:
        made.slot = formation.with_workers(made, workers)
    return made


def test_the_first_web_container_leaves_by_default_with_its_port_and_timeouts() -> None:
    assert Leaving.of(release(SLOT)) == Leaving(
        "shop-v3",
        (41001,),
        drain_timeout=12.0,
        stop_timeout=4.0,
        label="v3",
        release_id=7,
        handover_window=60.0,
        handover_signal="SIGUSR1",
    )


def test_a_deliberate_stop_bounds_the_drain_but_never_lengthens_it() -> None:
    leaving = Leaving.of(release(SLOT))
    assert leaving is not None
    assert leaving.within(5).drain_timeout == 5.0
    assert leaving.within(30).drain_timeout == 12.0
    assert leaving.within(5).handover_window == 60.0, "the handover is spread all the same"


def test_each_container_of_the_slot_leaves_on_its_own_port_workers_on_none() -> None:
    every = Leaving.every(release(SLOT, {"worker": ["shop-v3-worker-1"]}))
    assert [(one.container, one.ports) for one in every] == [
        ("shop-v3", (41001,)),
        ("shop-v3-web2", (41002,)),
        ("shop-v3-worker-1", ()),  # a background process: nothing routed to it, no drain
    ]
    assert {one.label for one in every} == {"v3"}
    assert every[1].urls == {"http://127.0.0.1:41002"}
    assert every[2].urls == set()


def test_a_container_on_a_swarm_node_is_drained_at_that_node_s_address() -> None:
    on_nodes = Slot((Instance("shop-v3", 30001, "10.0.0.7"), Instance("shop-v3-web2", 30002)))
    first, second = Leaving.every(release(on_nodes))
    assert (first.address, first.urls) == ("10.0.0.7", {"http://10.0.0.7:30001"})
    assert (second.address, second.urls) == (LOOPBACK, {"http://127.0.0.1:30002"})


def test_ports_the_runtime_publishes_now_override_the_record() -> None:
    leaving = Leaving.of(release(SLOT), "shop-v3-web2", (50001, 50002), "10.0.0.9")
    assert leaving is not None
    assert leaving.ports == (50001, 50002)
    assert leaving.urls == {"http://10.0.0.9:50001", "http://10.0.0.9:50002"}


def test_a_release_with_no_container_has_nothing_to_retire() -> None:
    assert Leaving.of(release()) is None
    assert Leaving.every(release()) == []


def test_a_release_recorded_before_slots_leaves_by_its_one_container() -> None:
    legacy = release()
    legacy.container, legacy.host_port = "shop-v3", 41001
    assert [(one.container, one.ports) for one in Leaving.every(legacy)] == [("shop-v3", (41001,))]


def test_a_release_without_a_config_snapshot_leaves_with_the_default_timeouts() -> None:
    bare = release(SLOT)
    bare.config = AppConfig.from_dict({})  # what a row that holds {} reads back as
    leaving = Leaving.of(bare)
    assert leaving is not None
    defaults = AppConfig().deploy
    assert (leaving.drain_timeout, leaving.stop_timeout) == (
        defaults.drain_timeout,
        defaults.stop_timeout,
    )
