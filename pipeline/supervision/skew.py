"""The end of each kept release's time (skew protection, `pipeline.steps.skew`): checked every
`interval` seconds, so a release is let go at most that long after its time is over."""

from __future__ import annotations

from pipeline.context import Context
from pipeline.steps.skew import let_go_expired
from pipeline.supervision.periodic import Periodic


class SkewExpiry(Periodic):
    name = "skew"

    def __init__(self, ctx: Context, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.ctx = ctx

    def check(self) -> None:
        let_go_expired(self.ctx)
