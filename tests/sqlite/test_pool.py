"""The records' connections are all opened at start: the pool holds POOL_SIZE of them, each with
its pragmas, and as many reads at once as the pool holds open none more."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event

from pipeline.sqlite.store import CACHE_KIB, POOL_SIZE, Store


def test_warm_opens_every_pooled_connection_with_its_pragmas(store: Store) -> None:
    store.close()  # the fixture's migration and set-up used some: start from none
    opened: list[Any] = []
    event.listen(store.engine, "connect", lambda connection, _record: opened.append(connection))

    store.warm()

    assert len(opened) == POOL_SIZE
    assert store.engine.pool.checkedin() == POOL_SIZE  # type: ignore[attr-defined]
    for connection in opened:
        assert connection.execute("PRAGMA cache_size").fetchone() == (-CACHE_KIB,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    # As many readers at once as the pool holds: each takes an open connection.
    store.create_app("shop")
    gate = threading.Barrier(POOL_SIZE)
    read: list[str] = []

    def reader() -> None:
        with store.engine.connect() as connection:
            gate.wait(timeout=30)
            read.append(connection.exec_driver_sql("SELECT name FROM apps").scalar_one())

    threads = [threading.Thread(target=reader) for _ in range(POOL_SIZE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert read == ["shop"] * POOL_SIZE
    assert len(opened) == POOL_SIZE
