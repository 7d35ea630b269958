"""The seam between the deploy story and its strategies: what a strategy does, and the one
place that finds a strategy's module by its name."""

from __future__ import annotations

import importlib
from typing import Protocol, cast

from pipeline.context import Deploy
from pipeline.deploy import strategies
from pipeline.deploy.strategies import Strategy
from pipeline.sqlite.models import Release
from pipeline.steps.build import Built
from pipeline.steps.switch import Target


class Lane(Protocol):
    """The app's deploy queue, as the story sees it."""

    def idle(self) -> bool:
        """No newer deploy waits, and the daemon is not stopping."""

    def pause(self, seconds: float) -> bool:
        """Wait up to `seconds`; True at once when a deploy comes or the daemon stops."""

    def retired(self) -> bool:
        """Wait until the app's old slots have drained and stopped; False if a deploy came."""


class Plan(Protocol):
    """What differs between strategies; a strategy's module is one."""

    def start(self, run: Deploy, built: Built, lane: Lane) -> Target:
        """The new slot, booted and gated (and judged) beside, or instead of, the live one."""

    def hand_over(self, run: Deploy, target: Target, previous: Release | None) -> None:
        """After the switch: the new slot goes live; `previous`, the live release it
        replaces, bakes, drains or is already gone."""


def plan_of(strategy: Strategy) -> Plan:
    return cast(Plan, importlib.import_module(f"{strategies.__name__}.{strategy.module}"))
