"""SQLite: the embedded engine of the single-process default."""

import sqlite3
from typing import Any

from homeserver.storage.engines._base import Engine


class SqliteEngine(Engine):
    name = "sqlite"
    module = sqlite3
    supports_multiple_processes = False

    def connect_args(self) -> dict[str, Any]:
        return {"database": self.args["database"], "check_same_thread": False, "timeout": 30}

    def on_new_connection(self, conn: Any) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.commit()

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    @property
    def max_pool_size(self) -> int | None:
        # One connection: SQLite serialises writers anyway, and this avoids lock errors.
        return 1
