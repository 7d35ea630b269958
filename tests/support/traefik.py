"""The managed Traefik of a fresh home on loopback ports, for the tests that drive it alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.settings import Address, Settings
from pipeline.traefik.process import ManagedTraefik
from tests.support.ports import LOOPBACK, free_port


@contextlib.contextmanager
def managed_traefik(home: Path, **fields: Any) -> Iterator[tuple[Settings, ManagedTraefik]]:
    """Settings for `home` (web and API on free loopback ports, `fields` besides) and the
    real Traefik started for them; stopped afterwards."""
    settings = Settings(
        home=home,
        http=Address(LOOPBACK, free_port()),
        traefik_api=Address(LOOPBACK, free_port()),
        **fields,
    )
    settings.make_dirs()
    proxy = ManagedTraefik(settings, check_interval=0.2)
    proxy.start()
    try:
        yield settings, proxy
    finally:
        proxy.stop()
