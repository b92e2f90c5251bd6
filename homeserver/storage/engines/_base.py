"""The engine interface shared by PostgreSQL and SQLite."""

from typing import Any


class Engine:
    """What the rest of storage needs to know about one database engine."""

    name: str = ""
    module: Any = None
    # True when more than one process may share the database.
    supports_multiple_processes: bool = False
    # True when text values cannot hold NUL characters (see `Txn._values`).
    strips_nul: bool = False

    def __init__(self, args: dict[str, Any]):
        self.args = args

    def connect_args(self) -> dict[str, Any]:
        return dict(self.args)

    def on_new_connection(self, conn: Any) -> None:
        """Set session options on a freshly opened connection."""

    def convert_param_style(self, sql: str) -> str:
        """Stores write `?` placeholders; engines translate them."""
        return sql

    def is_retryable(self, error: BaseException) -> bool:
        """True for serialization failures and deadlocks, which a retry may resolve."""
        return False

    def is_connection_error(self, error: BaseException) -> bool:
        return False

    @property
    def max_pool_size(self) -> int | None:
        return None
