"""Each strategy is one module, found by its name: every `Strategy` member has a module with
the `Plan`'s functions, taking the parameters the story passes."""

from __future__ import annotations

import inspect

import pytest

from pipeline.deploy.strategies import Strategy
from pipeline.deploy.strategy import Plan, plan_of


@pytest.mark.parametrize("strategy", list(Strategy))
def test_every_strategy_has_a_module_that_starts_and_hands_over(strategy: Strategy) -> None:
    plan = plan_of(strategy)
    assert plan.__name__.endswith(f".strategies.{strategy.module}")  # type: ignore[attr-defined]
    for name in ("start", "hand_over"):
        wanted = list(inspect.signature(getattr(Plan, name)).parameters)[1:]  # less self
        assert list(inspect.signature(getattr(plan, name)).parameters) == wanted, name


def test_a_release_recorded_without_a_strategy_is_blue_green() -> None:
    assert Strategy.named("") is Strategy.BLUE_GREEN
    assert Strategy.named("rolling") is Strategy.ROLLING
    with pytest.raises(ValueError):
        Strategy.named("Blue-Green")
