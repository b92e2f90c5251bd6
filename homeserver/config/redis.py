"""The `redis` section: the pub/sub server that carries replication between processes."""

from homeserver.config._base import RawConfig, Section


class RedisConfig(Section):
    SCHEMA = {
        "redis": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean"},
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "path": {"type": "string"},
                "dbid": {"type": "integer", "minimum": 0},
                "password": {"type": "string"},
                "password_path": {"type": "string"},
                "use_tls": {"type": "boolean"},
            },
        }
    }

    def read(self, raw: RawConfig) -> None:
        section = raw.get("redis") or {}
        self.enabled: bool = bool(section.get("enabled", False))
        self.host: str = section.get("host", "localhost")
        self.port: int = section.get("port", 6379)
        self.dbid: int | None = section.get("dbid")
        if "password" in section and "password_path" in section:
            raise raw.error("set `password` or `password_path`, not both", "redis", "password_path")
        self.password: str | None = section.get("password")
        if "password_path" in section:
            try:
                with open(section["password_path"]) as f:
                    self.password = f.read().strip()
            except OSError as e:
                raise raw.error(f"cannot read the file: {e.strerror}", "redis", "password_path") from e
