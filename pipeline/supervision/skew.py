"""The kept releases (skew protection, `pipeline.steps.skew`), checked every `interval`
seconds: one whose time is over is let go at most that long after, and one whose containers
stopped or moved is routed to those that serve, or let go."""

from __future__ import annotations

from pipeline.context import Context
from pipeline.steps.skew import follow_kept, let_go_expired
from pipeline.supervision.periodic import Periodic


class SkewExpiry(Periodic):
    name = "skew"

    def __init__(self, ctx: Context, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.ctx = ctx

    def check(self) -> None:
        let_go_expired(self.ctx)
        follow_kept(self.ctx)
