"""Releases kept for skew protection, as the records keep them: set, listed oldest first by
app, let go; the record survives a round trip through SQLite as written."""

from __future__ import annotations

from pipeline.release.records import Entry, KeptRecord
from pipeline.release.states import ReleaseState
from pipeline.sqlite.models import ReleaseSource
from pipeline.sqlite.store import ImageUse, Store


def kept(until: float, container: str) -> KeptRecord:
    entry = Entry(container=container, host_port=30001, address="10.231.0.7")
    return KeptRecord(until=until, web=(entry,))


def test_kept_releases_are_listed_oldest_first_by_app_until_let_go(store: Store) -> None:
    shop, blog = store.create_app("shop"), store.create_app("blog")
    releases = [
        store.create_release(shop, source=ReleaseSource.PUSH, commit=f"{n}" * 40) for n in (1, 2, 3)
    ]
    other = store.create_release(blog, source=ReleaseSource.PUSH, commit="4" * 40)
    assert store.kept_releases() == {}
    store.set_kept(releases[1].pk, kept(200.0, "shop-v2"))
    store.set_kept(releases[0].pk, kept(100.0, "shop-v1"))
    store.set_kept(other.pk, kept(300.0, "blog-v1"))

    found = store.kept_releases()
    assert [r.number for r in found[shop.pk]] == [1, 2]
    assert found[shop.pk][0].kept == kept(100.0, "shop-v1")
    assert found[shop.pk][0].kept.slot.urls == ("http://10.231.0.7:30001",)
    assert list(store.kept_releases(blog)) == [blog.pk]

    store.set_kept(releases[0].pk, None)
    assert [r.number for r in store.kept_releases(shop)[shop.pk]] == [2]
    assert store.get_release(releases[0].pk).kept is None


def test_the_image_prune_reads_each_release_image_state_and_kept_newest_first(
    store: Store,
) -> None:
    shop, blog = store.create_app("shop"), store.create_app("blog")
    first = store.create_release(shop, source=ReleaseSource.PUSH, commit="1" * 40, image="i1")
    second = store.create_release(shop, source=ReleaseSource.PUSH, commit="2" * 40, image="i2")
    store.create_release(shop, source=ReleaseSource.PUSH, commit="3" * 40)
    store.create_release(blog, source=ReleaseSource.PUSH, commit="4" * 40, image="b1")
    store.record_state(first.pk, ReleaseState.FAILED, ReleaseState.QUEUED)
    store.set_kept(second.pk, kept(100.0, "shop-v2"))

    assert store.image_uses(shop) == [
        ImageUse(None, ReleaseState.QUEUED, False),
        ImageUse("i2", ReleaseState.QUEUED, True),
        ImageUse("i1", ReleaseState.FAILED, False),
    ]
    assert store.image_uses(shop, limit=1) == [ImageUse(None, ReleaseState.QUEUED, False)]
