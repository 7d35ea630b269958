"""How a release replaces the live one: one module per strategy, named after its `Strategy`
member (`blue-green` lives in `blue_green.py`), each giving how the new slot starts and how
the previous one hands over to it (`pipeline.deploy.strategy.Plan`).

Adding a strategy is a member here and its module; nothing else names them.
"""

from __future__ import annotations

import enum


class Strategy(enum.StrEnum):
    BLUE_GREEN = "blue-green"  # new slot beside the live one, one switch; the old bakes or drains
    RECREATE = "recreate"  # the live slot stops first: downtime, but never two versions at once
    ROLLING = "rolling"  # one web container at a time, each gated and swapped in
    CANARY = "canary"  # a share of the requests first, judged against the live release's

    @property
    def module(self) -> str:
        """The name of the module under `pipeline.deploy.strategies` that carries it out."""
        return self.value.replace("-", "_")

    @classmethod
    def named(cls, name: str) -> Strategy:
        """The strategy of a release record: one recorded before strategies were kept is
        blue-green."""
        return cls(name) if name else cls.BLUE_GREEN
