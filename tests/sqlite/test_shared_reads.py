"""Releases as the supervisor and the scheduler read them each second: each configuration
validated once and shared, the traffic report left out (reading it raises, never silently
None)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import SQLAlchemyError

from pipeline.release.records import TrafficRecord
from pipeline.release.states import ReleaseState
from pipeline.sqlite.models import ReleaseSource
from pipeline.sqlite.store import Store


def live_release(store: Store, name: str) -> None:
    app = store.create_app(name)
    release = store.create_release(app, source=ReleaseSource.PUSH, commit="a" * 40)
    store.record_state(release.pk, ReleaseState.LIVE, ReleaseState.QUEUED)
    store.add_traffic(release.pk, TrafficRecord(requests=10, errors=0))


def test_live_releases_share_one_validated_configuration(store: Store) -> None:
    for name in ("one", "two"):
        live_release(store, name)
    first, second = store.newest_per_app(ReleaseState.LIVE).values()
    assert first.config == second.config
    assert first.config is second.config  # the same text, validated once
    again = store.newest_per_app(ReleaseState.LIVE)
    assert all(release.config is first.config for release in again.values())


def test_the_traffic_report_is_left_out_and_reading_it_raises(store: Store) -> None:
    live_release(store, "one")
    (release,) = store.newest_per_app(ReleaseState.LIVE).values()
    with pytest.raises(SQLAlchemyError):
        _ = release.traffic
    (full,) = store.releases_in(ReleaseState.LIVE).values()
    assert full[0].traffic is not None and full[0].traffic.requests == 10
