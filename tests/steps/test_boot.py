"""The names boot gives a release's containers (pipeline.steps.boot.role): the part after
`<app>-v<n>`, so that every container of a release, and of each process type, is told apart.
"""

from __future__ import annotations

import pytest

from pipeline.steps.boot import role


@pytest.mark.parametrize(
    ("index", "process", "name"),
    [(0, "web", ""), (1, "web", "web2"), (2, "web", "web3"), (0, "worker", "worker-1"),
     (3, "clock", "clock-4")],
)  # fmt: skip
def test_the_first_web_container_keeps_the_name_a_release_always_had(
    index: int, process: str, name: str
) -> None:
    assert role(index, process) == name
