"""The registries image deploys pull from with credentials: one login per registry."""

from __future__ import annotations

from sqlmodel import col, select

from pipeline.sqlite.models import RegistryLogin, now
from pipeline.sqlite.records import Records


class Registries(Records):
    def all(self) -> list[RegistryLogin]:
        with self._session() as session:
            return list(session.exec(select(RegistryLogin).order_by(col(RegistryLogin.host))))

    def of(self, registry: str) -> RegistryLogin | None:
        with self._session() as session:
            query = select(RegistryLogin).where(RegistryLogin.host == registry)
            return session.exec(query).first()

    def put(self, registry: str, username: str, password_sealed: str) -> RegistryLogin:
        """Store the registry's login, replacing the one it had."""
        with self._session() as session:
            query = select(RegistryLogin).where(RegistryLogin.host == registry)
            login = session.exec(query).first() or RegistryLogin(
                host=registry, username=username, password_sealed=password_sealed
            )
            login.username, login.password_sealed, login.created_at = (
                username,
                password_sealed,
                now(),
            )
            session.add(login)
            session.commit()
            return login

    def remove(self, registry: str) -> RegistryLogin:
        query = select(RegistryLogin).where(RegistryLogin.host == registry)
        return self._delete_one(query, f"temps has no login for the registry {registry!r}")
