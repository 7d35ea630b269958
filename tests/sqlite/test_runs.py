"""The records of one-off runs: asked, started, ended once; unfinished ones interrupted at
start; only the newest kept. A real SQLite file migrated by Alembic."""

from __future__ import annotations

import pytest

from pipeline.errors import NotFound
from pipeline.sqlite import runs
from pipeline.sqlite.models import RunState
from pipeline.sqlite.store import Store


def test_a_run_is_asked_started_and_ended_once(store: Store) -> None:
    app = store.create_app("one")
    asked = store.runs.ask(app, 3, "admin", ["python", "manage.py", "migrate"], tty=False)
    assert (asked.state, asked.release, asked.who, asked.started_at) == (
        RunState.PENDING, 3, "admin", None,
    )  # fmt: skip
    store.runs.started(asked.pk, "temps-one-v3-run-1a2b3c-0000")
    store.runs.ended(asked.pk, RunState.EXITED, exit_code=0)
    store.runs.ended(asked.pk, RunState.DISCONNECTED, detail="too late")  # already ended: kept
    run = store.runs.get(app, asked.pk)
    assert run.state == RunState.EXITED and run.exit_code == 0 and run.detail is None
    assert run.command == ["python", "manage.py", "migrate"]
    assert run.container == "temps-one-v3-run-1a2b3c-0000"
    assert run.started_at is not None and run.ended_at is not None
    assert run.created_at <= run.started_at <= run.ended_at


def test_another_apps_run_is_not_found(store: Store) -> None:
    one, other = store.create_app("one"), store.create_app("other")
    asked = store.runs.ask(one, 1, "admin", ["true"], tty=False)
    with pytest.raises(NotFound, match="has no run"):
        store.runs.get(other, asked.pk)


def test_unfinished_runs_are_interrupted_and_ended_ones_kept(store: Store) -> None:
    app = store.create_app("one")
    pending = store.runs.ask(app, 1, "admin", ["sleep", "9"], tty=False)
    running = store.runs.ask(app, 1, "admin", ["sh"], tty=True)
    store.runs.started(running.pk, "c")
    done = store.runs.ask(app, 1, "admin", ["true"], tty=False)
    store.runs.ended(done.pk, RunState.EXITED, exit_code=0)
    assert store.runs.interrupt_unfinished() == 2
    states = {run.id: run.state for run in store.runs.of(app)}
    assert states == {
        pending.id: RunState.INTERRUPTED,
        running.id: RunState.INTERRUPTED,
        done.id: RunState.EXITED,
    }


def test_only_the_newest_runs_of_an_app_are_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "KEPT", 3)
    app, other = store.create_app("one"), store.create_app("other")
    kept_elsewhere = store.runs.ask(other, 1, "admin", ["true"], tty=False)
    asked = [store.runs.ask(app, 1, "admin", [f"echo {n}"], tty=False) for n in range(5)]
    assert [run.id for run in store.runs.of(app)] == [run.id for run in reversed(asked[2:])]
    assert [run.id for run in store.runs.of(other)] == [kept_elsewhere.id]
