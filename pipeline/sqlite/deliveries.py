"""Webhook deliveries, kept to answer redeliveries and to show what was ignored and why."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from pipeline.sqlite.models import App, Delivery
from pipeline.sqlite.records import Records


class Deliveries(Records):
    def claim(
        self, app: App, provider: str, delivery_id: str, event: str, body_digest: str | None = None
    ) -> int | None:
        """Record a delivery; None when its id or its body was seen before (a redelivery)."""
        with self._session() as session:
            row = Delivery(
                app_id=app.pk,
                provider=provider,
                delivery_id=delivery_id,
                event=event,
                outcome="received",
                body_digest=body_digest,
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                return None
            return row.id

    def forget(self, delivery: int) -> None:
        """Forget a claim that was refused, so that the sender's retry is not a duplicate."""
        with self._session() as session:
            row = session.get(Delivery, delivery)
            if row is not None:
                session.delete(row)
                session.commit()

    def settle(self, delivery: int, outcome: str, release_id: int | None = None) -> None:
        with self._session() as session:
            row = session.get(Delivery, delivery)
            assert row is not None
            row.outcome, row.release_id = outcome, release_id
            session.add(row)
            session.commit()

    def of(self, app: App, limit: int = 50) -> list[Delivery]:
        newest = col(Delivery.id).desc()
        query = select(Delivery).where(Delivery.app_id == app.id).order_by(newest).limit(limit)
        with self._session() as session:
            return list(session.exec(query))
