"""The `redis` section: the pub/sub server that carries replication between processes."""

from homeserver.config._base import RawConfig, Section


class RedisConfig(Section):
    SCHEMA = {
        "redis": {
            "type": "object",
            "description": "The Redis server that carries replication between processes. Needed, "
            "with `enabled: true`, as soon as the deployment has workers.",
            "properties": {
                "enabled": {
                    "type": "boolean",
                    "description": "Connect to Redis. Default `false`.",
                },
                "host": {"type": "string", "description": "Redis host name. Default `localhost`."},
                "port": {
                    "type": "integer", "minimum": 1, "maximum": 65535,
                    "description": "Redis port. Default `6379`.",
                },
                "path": {
                    "type": "string",
                    "description": "A unix socket in place of `host` and `port`. Not supported "
                    "yet: a config that sets it is refused (use `host` and `port`).",
                },
                "dbid": {
                    "type": "integer", "minimum": 0,
                    "description": "Redis database number. Default: none (Redis's database 0).",
                },
                "password": {
                    "type": "string",
                    "description": "Redis password. Default: none. Set this or `password_path`, "
                    "not both.",
                },
                "password_path": {
                    "type": "string",
                    "description": "A file holding the Redis password (surrounding whitespace is "
                    "dropped).",
                },
                "use_tls": {
                    "type": "boolean",
                    "description": "Connect to Redis over TLS. Not supported yet: `true` is refused "
                    "rather than silently connecting unencrypted; keep Redis on a private network.",
                },
            },
        }
    }

    def read(self, raw: RawConfig) -> None:
        section = raw.get("redis") or {}
        # Refused rather than ignored: an admin asking for these must not get something else.
        if section.get("use_tls"):
            raise raw.error("TLS to Redis is not supported yet; keep Redis on a private network and "
                            "set use_tls: false", "redis", "use_tls")
        if "path" in section:
            raise raw.error("unix sockets are not supported yet; use host and port", "redis", "path")
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
