"""The allowed-transitions table, and Journal: the one place a release changes state, and its
log that followers read live."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.app.config import AppConfig
from pipeline.errors import Conflict
from pipeline.release.journal import KEEP_FINISHED_IN_MEMORY, MAX_LINE, Chunk, Journal
from pipeline.release.states import ALLOWED, TERMINAL, Failure, ReleaseState, is_allowed
from pipeline.release.transition import transition
from pipeline.sqlite.models import Release, ReleaseSource
from pipeline.sqlite.store import Store
from tests.support.store import store_at

S = ReleaseState

HAPPY_PATH = [
    S.QUEUED,
    S.BUILDING,
    S.RELEASING,
    S.BOOTING,
    S.HEALTH_CHECKING,
    S.SWITCHING,
    S.DRAINING,
    S.LIVE,
    S.RETIRED,
]


# --- the table ----------------------------------------------------------------------------


def test_every_state_has_a_row_in_the_table() -> None:
    assert set(ALLOWED) == set(ReleaseState)


@pytest.mark.parametrize(("was", "state"), list(itertools.pairwise(HAPPY_PATH)))
def test_each_step_of_the_happy_path_is_allowed(was: ReleaseState, state: ReleaseState) -> None:
    assert is_allowed(was, state)


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_a_terminal_state_has_no_way_out(state: ReleaseState) -> None:
    assert ALLOWED[state] == frozenset()
    assert not any(is_allowed(state, other) for other in ReleaseState)


def test_the_terminal_states_are_the_four_documented_ones() -> None:
    assert frozenset({S.RETIRED, S.FAILED, S.SUPERSEDED, S.INTERRUPTED}) == TERMINAL


@pytest.mark.parametrize(
    ("was", "state"),
    [
        (S.LIVE, S.BUILDING),
        (S.LIVE, S.QUEUED),
        (S.LIVE, S.INTERRUPTED),
        (S.LIVE, S.DRAINING),
        (S.QUEUED, S.LIVE),
        (S.BUILDING, S.SWITCHING),
        (S.BOOTING, S.LIVE),
        (S.HEALTH_CHECKING, S.LIVE),
        (S.BUILDING, S.SUPERSEDED),
        (S.RETIRED, S.LIVE),
        (S.FAILED, S.QUEUED),
    ],
)
def test_a_move_outside_the_table_is_refused(was: ReleaseState, state: ReleaseState) -> None:
    assert not is_allowed(was, state)


def test_no_state_moves_to_itself() -> None:
    assert not any(is_allowed(state, state) for state in ReleaseState)


IN_FLIGHT = HAPPY_PATH[: HAPPY_PATH.index(S.LIVE)]  # a deploy's states before it goes live


@pytest.mark.parametrize("state", IN_FLIGHT)
def test_a_deploy_in_flight_can_always_fail_or_be_interrupted(state: ReleaseState) -> None:
    assert is_allowed(state, S.FAILED)
    assert is_allowed(state, S.INTERRUPTED)


def test_only_a_queued_release_can_be_superseded() -> None:
    assert [state for state in ReleaseState if is_allowed(state, S.SUPERSEDED)] == [S.QUEUED]


def test_only_the_gate_a_canary_or_a_standby_take_over_leads_to_the_switch() -> None:
    # queued -> switching is the rollback inside the bake window: the standby slot passed its
    # gate when it went live. A built or booted slot always goes through the gate, and a
    # canary comes only from the gate.
    into_switch = {state for state in ReleaseState if is_allowed(state, S.SWITCHING)}
    assert into_switch == {S.HEALTH_CHECKING, S.CANARY, S.QUEUED}
    into_canary = {state for state in ReleaseState if is_allowed(state, S.CANARY)}
    assert into_canary == {S.HEALTH_CHECKING}


def test_only_a_release_that_served_traffic_is_retired() -> None:
    retirable = {state for state in ReleaseState if is_allowed(state, S.RETIRED)}
    assert retirable == {S.LIVE, S.STANDBY}


def test_the_bake_window_can_flip_back_to_the_standby_slot() -> None:
    # live -> standby when replaced; a failing bake makes standby live again.
    assert is_allowed(S.LIVE, S.STANDBY)
    assert is_allowed(S.STANDBY, S.LIVE)
    assert not is_allowed(S.STANDBY, S.BUILDING)


# --- Journal.transition against a migrated SQLite file --------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with store_at(tmp_path / "temps.db") as store:
        yield store


@pytest.fixture
def journal(store: Store) -> Journal:
    return Journal(store)


@pytest.fixture
def release(store: Store) -> Release:
    app = store.create_app("shop")
    return store.create_release(
        app, source=ReleaseSource.PUSH, commit="a" * 40, strategy="blue-green", config=AppConfig()
    )


def test_transition_persists_the_state_and_records_was(
    store: Store, journal: Journal, release: Release
) -> None:
    updated = transition(store, "shop", release, S.BUILDING)
    assert updated.state == S.BUILDING
    assert release.id is not None
    assert store.get_release(release.id).state == "building"
    events = [(event.state, event.was) for event in store.events(release.id)]
    assert events == [("queued", None), ("building", "queued")]


def test_transition_stores_the_extra_fields_with_the_state(
    store: Store, journal: Journal, release: Release
) -> None:
    building = transition(store, "shop", release, S.BUILDING)
    failed = transition(
        store, "shop", building, S.FAILED, failure=Failure("no Dockerfile", "building")
    )
    assert release.id is not None
    stored = store.get_release(release.id)
    assert (stored.state, stored.failure_reason, stored.failed_step) == (
        "failed",
        "no Dockerfile",
        "building",
    )
    assert failed.failure_reason == "no Dockerfile"


def test_the_whole_happy_path_is_recorded_in_order(
    store: Store, journal: Journal, release: Release
) -> None:
    current = release
    for state in HAPPY_PATH[1:]:
        current = transition(store, "shop", current, state)
    assert release.id is not None
    events = store.events(release.id)
    assert [event.state for event in events] == [str(state) for state in HAPPY_PATH]
    assert [event.was for event in events] == [None, *[str(state) for state in HAPPY_PATH[:-1]]]
    assert store.get_release(release.id).state == "retired"


def test_a_disallowed_move_raises_conflict_and_changes_nothing(
    store: Store, journal: Journal, release: Release
) -> None:
    with pytest.raises(Conflict, match="cannot go from queued to live"):
        transition(store, "shop", release, S.LIVE)
    assert release.id is not None
    assert store.get_release(release.id).state == "queued"
    assert [event.state for event in store.events(release.id)] == ["queued"]


def test_a_terminal_release_refuses_every_move(
    store: Store, journal: Journal, release: Release
) -> None:
    superseded = transition(store, "shop", release, S.SUPERSEDED)
    for state in ReleaseState:
        with pytest.raises(Conflict):
            transition(store, "shop", superseded, state)
    assert release.id is not None
    assert store.get_release(release.id).state == "superseded"
    assert len(store.events(release.id)) == 2


def test_a_stale_copy_of_the_release_cannot_move_it(
    store: Store, journal: Journal, release: Release
) -> None:
    # Two writers holding the same queued record: the second one must not overwrite the first.
    transition(store, "shop", release, S.BUILDING)
    with pytest.raises(Conflict):
        transition(store, "shop", release, S.SUPERSEDED)
    assert release.id is not None
    assert store.get_release(release.id).state == "building"
    assert [event.state for event in store.events(release.id)] == ["queued", "building"]


# --- Journal write / follow / finish ------------------------------------------------------


def release_id(release: Release) -> int:
    assert release.id is not None
    return release.id


def test_write_stores_non_blank_lines_and_follow_returns_them(
    store: Store, journal: Journal, release: Release
) -> None:
    rid = release_id(release)
    journal.start(rid)
    journal.write(rid, "step 1/3\n\n   \nstep 2/3   \n")
    chunk = journal.follow(rid, 0, timeout=0.1)
    assert chunk == Chunk(["step 1/3", "step 2/3"], 2, False)
    assert store.log_lines(rid) == ["step 1/3", "step 2/3"]


def test_follow_returns_only_the_lines_after_the_position(
    journal: Journal, release: Release
) -> None:
    rid = release_id(release)
    journal.write(rid, "one\ntwo\nthree")
    chunk = journal.follow(rid, 2, timeout=0.1)
    assert chunk.lines == ["three"]
    assert chunk.position == 3


def test_follow_waits_at_most_its_timeout_when_nothing_is_new(
    journal: Journal, release: Release
) -> None:
    rid = release_id(release)
    journal.start(rid)
    journal.write(rid, "one")
    started = time.monotonic()
    chunk = journal.follow(rid, 1, timeout=0.2)
    waited = time.monotonic() - started
    assert chunk == Chunk([], 1, False)
    assert 0.15 <= waited < 2.0


def test_follow_reports_done_after_finish(journal: Journal, release: Release) -> None:
    rid = release_id(release)
    journal.start(rid)
    journal.write(rid, "built")
    journal.finish(rid)
    assert journal.follow(rid, 0, timeout=0.1) == Chunk(["built"], 1, True)
    started = time.monotonic()
    assert journal.follow(rid, 1, timeout=5.0) == Chunk([], 1, True)
    assert time.monotonic() - started < 1.0


def test_a_fresh_journal_reads_a_finished_log_from_the_database(
    store: Store, journal: Journal, release: Release
) -> None:
    rid = release_id(release)
    journal.write(rid, "a\nb\nc")
    journal.finish(rid)
    other = Journal(store)
    assert other.follow(rid, 1, timeout=0.1) == Chunk(["b", "c"], 3, True)


def test_a_follower_in_another_thread_sees_lines_written_later(
    journal: Journal, release: Release
) -> None:
    rid = release_id(release)
    journal.start(rid)
    seen: list[str] = []
    ended = threading.Event()

    def follower() -> None:
        position = 0
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            chunk = journal.follow(rid, position, timeout=1.0)
            seen.extend(chunk.lines)
            position = chunk.position
            if chunk.done:
                ended.set()
                return

    thread = threading.Thread(target=follower, daemon=True)
    thread.start()
    for line in ("building", "booting", "live"):
        time.sleep(0.05)
        journal.write(rid, line)
    journal.finish(rid)
    thread.join(timeout=5.0)
    assert ended.is_set()
    assert seen == ["building", "booting", "live"]


def test_a_waiting_follower_wakes_as_soon_as_a_line_is_written(
    journal: Journal, release: Release
) -> None:
    rid = release_id(release)
    journal.start(rid)
    result: list[tuple[Chunk, float]] = []

    def follower() -> None:
        started = time.monotonic()
        chunk = journal.follow(rid, 0, timeout=5.0)
        result.append((chunk, time.monotonic() - started))

    thread = threading.Thread(target=follower, daemon=True)
    thread.start()
    time.sleep(0.1)
    journal.write(rid, "hello")
    thread.join(timeout=5.0)
    assert len(result) == 1
    chunk, waited = result[0]
    assert chunk == Chunk(["hello"], 1, False)
    assert waited < 4.0


def test_two_threads_writing_one_release_log_keep_store_memory_and_cap_in_step(
    store: Store, release: Release
) -> None:
    # A deploy and its old slot stopping in the background write the same log at once.
    journal = Journal(store, max_lines=300)
    rid = release_id(release)
    journal.start(rid)

    def writer(name: str) -> None:
        for number in range(200):
            journal.write(rid, f"-----> {name} {number}")

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("lane", "stop")]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the interpreter between the threads as often as it can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(switching)
    journal.finish(rid)
    stored = store.log_lines(rid)
    assert len(stored) == 300, len(stored)
    assert journal.follow(rid, 0, timeout=0.1).lines == stored


# --- what a release's log may take -------------------------------------------------------------


def test_the_log_is_capped_in_bytes_and_its_lines_in_length(store: Store, release: Release) -> None:
    journal = Journal(store, max_lines=10_000, max_bytes=100_000)
    rid = release_id(release)
    journal.start(rid)
    journal.write(rid, "x" * 1_000_000)  # one line without end
    for _ in range(100):
        journal.write(rid, "y" * 4000)
    journal.write(rid, "-----> v1 is live")
    journal.finish(rid)
    stored = store.log_lines(rid)
    assert stored[0] == "x" * MAX_LINE + " [line cut]"
    assert sum(len(line) for line in stored) <= 100_000
    assert "[log truncated at 100000 bytes]" in stored
    # temps' own line after the cut is still there: the outcome of a chatty deploy is kept.
    assert stored[-1] == "-----> v1 is live"


def test_logs_of_releases_past_the_newest_kept_are_deleted(store: Store) -> None:
    app = store.create_app("many")
    journal = Journal(store)
    ids = []
    for number in range(1, 6):
        made = store.create_release(app, source="push", commit=f"{number}" * 40)
        assert made.id is not None
        journal.write(made.id, f"-----> log of v{number}")
        ids.append(made.id)
    assert store.delete_old_logs(app, keep=2) == 3
    assert [store.log_lines(rid) for rid in ids] == [
        [],
        [],
        [],
        ["-----> log of v4"],
        ["-----> log of v5"],
    ]
    assert store.delete_old_logs(app, keep=2) == 0


def test_a_line_written_after_a_release_left_memory_does_not_reopen_its_follow(
    store: Store,
) -> None:
    """A drain line written into an old release's log must not make a follower of that
    release wait for ever on a log cut down to that line."""
    app = store.create_app("old-logs")
    journal = Journal(store)
    first = store.create_release(app, source="push", commit="a" * 40)
    assert first.id is not None
    journal.start(first.id)
    journal.write(first.id, "-----> v1 is live")
    journal.finish(first.id)
    for number in range(KEEP_FINISHED_IN_MEMORY + 1):  # push v1 out of memory
        later = store.create_release(app, source="push", commit=f"{number % 10}" * 40)
        assert later.id is not None
        journal.start(later.id)
        journal.finish(later.id)
    journal.write(first.id, "-----> Stopped v1: drained 0.1s, 0 requests finished")
    chunk = journal.follow(first.id, 0, timeout=0.1)
    assert chunk.done, chunk
    assert chunk.lines == [
        "-----> v1 is live",
        "-----> Stopped v1: drained 0.1s, 0 requests finished",
    ]


def test_a_release_of_a_destroyed_app_leaves_no_log_for_a_new_release_of_its_id(
    store: Store,
) -> None:
    """SQLite gives a new row the id after the largest one left: once a destroyed app's
    releases are erased, a new release may get one of their ids, and must be followed from
    an empty log, not end at once with the old one's lines."""
    journal = Journal(store)
    app = store.create_app("doomed")
    old = store.create_release(app, source="push", commit="a" * 40)
    journal.start(old.pk)
    journal.write(old.pk, "-----> v1 is live")
    journal.finish(old.pk)
    erased = store.teardown.erase(app, ())
    journal.forget(erased.release_ids)

    again = store.create_release(store.create_app("doomed"), source="push", commit="b" * 40)
    assert again.pk == old.pk  # the id was given again
    journal.start(again.pk)
    assert journal.follow(again.pk, 0, timeout=0.1) == Chunk([], 0, False)
    journal.write(again.pk, "-----> building")
    assert journal.follow(again.pk, 0, timeout=0.1) == Chunk(["-----> building"], 1, False)
