"""Database engines: what differs between PostgreSQL and SQLite, behind one small interface."""

from typing import Any

from homeserver.storage.engines._base import Engine
from homeserver.storage.engines.postgres import PostgresEngine
from homeserver.storage.engines.sqlite import SqliteEngine


def create_engine(name: str, args: dict[str, Any]) -> Engine:
    if name == "psycopg2":
        return PostgresEngine(args)
    if name == "sqlite3":
        return SqliteEngine(args)
    raise ValueError(f"unknown database engine {name!r}")


__all__ = ["Engine", "PostgresEngine", "SqliteEngine", "create_engine"]
