"""The `database` section: which engine (`psycopg2` or `sqlite3`) and its connection arguments."""

from typing import Any

from homeserver.config._base import RawConfig, Section


class DatabaseConfig(Section):
    SCHEMA = {
        "database": {
            "type": "object",
            "properties": {
                "name": {"enum": ["psycopg2", "sqlite3"]},
                "args": {
                    "type": "object",
                    "properties": {
                        "cp_min": {"type": "integer", "minimum": 1},
                        "cp_max": {"type": "integer", "minimum": 1},
                        "database": {"type": "string"},
                        "dbname": {"type": "string"},
                        "user": {"type": "string"},
                        "password": {"type": "string"},
                        "host": {"type": "string"},
                        "port": {"type": ["integer", "string"]},
                    },
                },
                "txn_limit": {"type": "integer", "minimum": 0},
                "allow_unsafe_locale": {"type": "boolean"},
            },
            "required": ["name"],
        },
        "databases": {"type": "object"},
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
