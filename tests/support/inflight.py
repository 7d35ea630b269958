"""Long requests held open on one release while temps moves traffic away from it.

Each is a 5 s `/cgi-bin/slow` request through Traefik; the app answers `slow done vN` with
the version that served it. Started while release N is what Traefik routes to, every one
must come back 200 from vN, whatever stops vN's container afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.daemon import TempsDaemon
from tests.support.load import SlowRequest, SlowResult

LONG_SECONDS = 5.0


@dataclass
class InFlight:
    """A batch of long requests started together, all expected from `version`."""

    version: str
    requests: list[SlowRequest] = field(default_factory=list)

    @classmethod
    def start(cls, daemon: TempsDaemon, app: str, version: str, count: int = 3) -> InFlight:
        batch = cls(version)
        for _ in range(count):
            batch.requests.append(SlowRequest(daemon.http_url, f"{app}.{daemon.domain}").start())
        return batch

    def results(self) -> list[SlowResult]:
        return [request.result() for request in self.requests]

    def problems(self) -> list[str]:
        """Why any request of the batch did not end 200 from `version` after its full 5 s."""
        found = []
        for result in self.results():
            took = result.finished - result.started
            if result.error is not None or result.status != 200:
                found.append(
                    f"{self.version}: HTTP {result.status} {result.error} after {took:.1f}s"
                )
            elif result.version != self.version:
                found.append(f"{self.version}: answered by {result.body.strip()!r}")
            elif took < LONG_SECONDS - 0.5:
                found.append(f"{self.version}: cut short after {took:.1f}s")
        return found


def assert_all_answered(batches: list[InFlight]) -> int:
    """Every long request of every batch came back 200 from its release; returns the count."""
    problems = [problem for batch in batches for problem in batch.problems()]
    total = sum(len(batch.requests) for batch in batches)
    assert not problems, f"{len(problems)} of {total} long requests failed: {problems}"
    return total
