"""Database engines: what differs between PostgreSQL and SQLite, behind one small interface.
Each engine's module (and its database driver) is imported only when a config asks for it."""

from typing import Any

from homeserver.storage.engines._base import Engine


def create_engine(name: str, args: dict[str, Any]) -> Engine:
    if name == "psycopg2":
        from homeserver.storage.engines.postgres import PostgresEngine

        return PostgresEngine(args)
    if name == "sqlite3":
        from homeserver.storage.engines.sqlite import SqliteEngine

        return SqliteEngine(args)
    raise ValueError(f"unknown database engine {name!r}")


__all__ = ["Engine", "create_engine"]
