"""PostgreSQL through psycopg2, at REPEATABLE READ isolation."""

from typing import Any

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions

from homeserver.storage.engines._base import Engine

_RETRYABLE = {
    psycopg2.errorcodes.SERIALIZATION_FAILURE,
    psycopg2.errorcodes.DEADLOCK_DETECTED,
}


class PostgresEngine(Engine):
    name = "postgres"
    module = psycopg2
    supports_multiple_processes = True
    strips_nul = True

    def connect_args(self) -> dict[str, Any]:
        args = dict(self.args)
        if "database" in args and "dbname" not in args:
            args["dbname"] = args.pop("database")
        return args

    def on_new_connection(self, conn: Any) -> None:
        conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ)
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout TO 0")
        conn.commit()

    def convert_param_style(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def is_retryable(self, error: BaseException) -> bool:
        return getattr(error, "pgcode", None) in _RETRYABLE

    def is_connection_error(self, error: BaseException) -> bool:
        return isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError) and not self.is_retryable(error)
