"""Fixtures for the end-to-end tests: a local busybox base image and a `temps serve` daemon on
free ports; and the order modules go out to test workers in. Tests check; bench/ measures."""

from __future__ import annotations

import re
import signal
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.support.busybox import ensure_busybox_image
from tests.support.daemon import TempsDaemon, running_daemon

TESTS = Path(__file__).resolve().parent
# `pytest -n N --dist loadfile` hands out whole modules in the order collected: the longest go
# out first, so that none of them is left to run alone at the end. Each is a module or a
# folder of them, as a path under tests/ without `.py`.
LONGEST_FIRST = ("receiver/test_openapi", "e2e/test_drain_paths", "e2e/test_swarm",
                 "e2e/test_https", "e2e/test_builders", "security", "e2e/test_formation",
                 "e2e/test_faults")  # fmt: skip


def rank_of(path: Path) -> int:
    """Where a test module goes in LONGEST_FIRST's order: after all of it when it is not named."""
    module = path.relative_to(TESTS).with_suffix("").as_posix()
    for rank, group in enumerate(LONGEST_FIRST):
        if module == group or module.startswith(f"{group}/"):
            return rank
    return len(LONGEST_FIRST)


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the commands the tests start, as in a user's terminal, even when the
    suite itself was started in the background with SIGINT ignored (which every child would
    inherit): a handler of this process's own goes back to the default in each child."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: rank_of(item.path))


@pytest.fixture(scope="session")
def busybox_image() -> str:
    return ensure_busybox_image()


@pytest.fixture(scope="module")
def temps_daemon(
    busybox_image: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TempsDaemon]:
    """One daemon per test module: each test uses its own app on it.

    A module may set `TEMPS_SERVE_ARGS` (a list of `temps serve` flags) for its daemon.
    """
    name = re.sub(r"[^a-z0-9]+", "-", request.module.__name__.lower()).strip("-")
    home = tmp_path_factory.mktemp(f"home-{name}")
    args = list(getattr(request.module, "TEMPS_SERVE_ARGS", ()))
    with running_daemon(home, name, args) as daemon:
        yield daemon


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    daemon = getattr(item, "funcargs", {}).get("temps_daemon")
    if report.failed and isinstance(daemon, TempsDaemon):
        report.sections.append(("temps daemon log (last lines)", daemon.log_tail()))
    return report
