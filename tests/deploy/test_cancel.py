"""A deploy of an app being destroyed stops before its next step (Deploy.move raises
Cancelled) until its route moves; from the canary on it finishes what it began, and a
cancelled one can still fail. Real records; the runtime is never called."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.app.sealing import Sealer
from pipeline.context import CANCELLED_BEFORE, Context, Deploy, Destroying
from pipeline.docker.runtime import DockerRuntime
from pipeline.errors import BeingDestroyed, Cancelled
from pipeline.release.journal import Journal
from pipeline.release.states import Failure
from pipeline.release.states import ReleaseState as S
from pipeline.settings import Settings
from pipeline.sqlite.models import ReleaseSource
from tests.support.store import open_store

# The steps a deploy goes through, in order, up to the gate.
STEPS = [S.BUILDING, S.RELEASING, S.BOOTING, S.HEALTH_CHECKING]


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    settings = Settings(home=tmp_path)
    settings.make_dirs()
    store = open_store(settings)
    runtime = DockerRuntime(settings.instance, settings.instance_id)  # connects on first use
    return Context(
        settings, store, Journal(store), runtime, Sealer.from_key_file(settings.secret_key_path)
    )


def deploy_of(ctx: Context, app: str) -> Deploy:
    made = ctx.store.create_app(app)
    release = ctx.store.create_release(made, source=ReleaseSource.PUSH, commit="a" * 40)
    return Deploy.of(ctx, release)


def test_the_steps_cancelled_are_those_before_the_route_moves() -> None:
    assert frozenset(STEPS) == CANCELLED_BEFORE


@pytest.mark.parametrize("step", STEPS)
def test_a_deploy_stops_before_its_next_step_once_the_app_is_being_destroyed(
    ctx: Context, step: S
) -> None:
    run = deploy_of(ctx, "doomed")
    before = STEPS[: STEPS.index(step)]
    for state in before:
        run.move(state)
    ctx.destroying.add("doomed")
    with pytest.raises(Cancelled, match="cancelled: app 'doomed' is being destroyed"):
        run.move(step)
    assert run.current().state == (before[-1] if before else S.QUEUED)
    failed = run.move(S.FAILED, failure=Failure("cancelled", str(run.current().state)))
    assert failed.state == S.FAILED


def test_a_deploy_whose_gate_passed_finishes_its_switch(ctx: Context) -> None:
    run = deploy_of(ctx, "doomed")
    for state in STEPS:
        run.move(state)
    ctx.destroying.add("doomed")
    assert run.move(S.SWITCHING).state == S.SWITCHING
    assert run.move(S.LIVE).state == S.LIVE


def test_a_deploy_of_another_app_goes_on(ctx: Context) -> None:
    run = deploy_of(ctx, "bystander")
    ctx.destroying.add("doomed")
    for state in STEPS:
        assert run.move(state).state == state


def test_the_set_of_apps_being_destroyed_refuses_changes_of_its_own() -> None:
    destroying = Destroying()
    destroying.add("doomed")
    with pytest.raises(BeingDestroyed, match="app 'doomed' is being destroyed; nothing was"):
        destroying.refuse("doomed")
    destroying.refuse("bystander")
    destroying.discard("doomed")
    destroying.refuse("doomed")
    assert "doomed" not in destroying
