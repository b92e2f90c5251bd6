"""The `database` section: which engine (`psycopg2` or `sqlite3`) and its connection arguments."""

from typing import Any

from homeserver.config._base import RawConfig, Section


class DatabaseConfig(Section):
    SCHEMA = {
        "database": {
            "type": "object",
            "description": "Which database to use and how to connect to it. Default: SQLite in "
            "`homeserver.db` in the working directory, which serves a single process only; "
            "workers need PostgreSQL.",
            "properties": {
                "name": {
                    "enum": ["psycopg2", "sqlite3"],
                    "description": "`psycopg2` for PostgreSQL, or `sqlite3` for a single-process "
                    "server. Required.",
                },
                "args": {
                    "type": "object",
                    "description": "Connection settings. For PostgreSQL everything except "
                    "`cp_min` and `cp_max` is passed to psycopg2 (any libpq connection keyword "
                    "works); for SQLite only `database` is used.",
                    "properties": {
                        "cp_min": {
                            "type": "integer", "minimum": 1,
                            "description": "Fewest connections the pool keeps open. Default `5`; "
                            "it may not exceed `cp_max`. SQLite always uses one connection.",
                        },
                        "cp_max": {
                            "type": "integer", "minimum": 1,
                            "description": "Most connections the pool opens. Default `10`.",
                        },
                        "database": {
                            "type": "string",
                            "description": "SQLite: the path of the database file (required). "
                            "PostgreSQL: the database name, as `dbname`.",
                        },
                        "dbname": {"type": "string", "description": "PostgreSQL database name."},
                        "user": {"type": "string", "description": "PostgreSQL user name."},
                        "password": {"type": "string", "description": "PostgreSQL password."},
                        "host": {
                            "type": "string",
                            "description": "PostgreSQL server host name, or the directory of its "
                            "unix socket.",
                        },
                        "port": {
                            "type": ["integer", "string"],
                            "description": "PostgreSQL server port; libpq's default (5432) when "
                            "unset.",
                        },
                    },
                },
                "txn_limit": {
                    "type": "integer", "minimum": 0,
                    "description": "Synapse reopens a connection after this many transactions. "
                    "Accepted and ignored; connections here are kept until they fail.",
                },
                "allow_unsafe_locale": {
                    "type": "boolean",
                    "description": "Lets Synapse use a PostgreSQL database whose collation is not "
                    "`C`. Accepted and ignored: no locale check is made, so create the database "
                    "with `LC_COLLATE 'C' LC_CTYPE 'C'` yourself.",
                },
            },
            "required": ["name"],
        },
        "databases": {
            "type": "object",
            "description": "Synapse's layout with several databases. Not supported: the process "
            "refuses to start when it is set; use `database`.",
        },
    }

    def read(self, raw: RawConfig) -> None:
        if "databases" in raw.values:
            raise raw.error("several databases are not supported; use the `database` section", "databases")
        section = raw.get("database") or {"name": "sqlite3", "args": {"database": "homeserver.db"}}
        self.engine: str = section["name"]
        args: dict[str, Any] = dict(section.get("args") or {})
        self.cp_min: int = args.pop("cp_min", 5)
        self.cp_max: int = args.pop("cp_max", 10)
        if self.cp_min > self.cp_max:
            raise raw.error("cp_min must not be greater than cp_max", "database", "args", "cp_min")
        if self.engine == "sqlite3" and "database" not in args:
            raise raw.error("sqlite3 needs `database`: the path of the database file", "database", "args")
        self.args = args

    @property
    def is_sqlite(self) -> bool:
        return self.engine == "sqlite3"
