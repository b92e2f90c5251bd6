"""`server_name`, `public_baseurl`, `listeners` and the other process-wide server settings."""

import re
from dataclasses import dataclass, field
from typing import Any

from homeserver.config._base import RawConfig, Section

RESOURCE_NAMES = [
    "client", "federation", "keys", "media", "metrics", "replication",
    "health", "openid", "static", "consent",
]

LISTENER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "path": {"type": "string"},
        "mode": {"type": ["integer", "string"]},
        "bind_addresses": {"type": "array", "items": {"type": "string"}},
        "bind_address": {"type": "string"},
        "type": {"enum": ["http", "metrics", "manhole", "replication"]},
        "tls": {"type": "boolean"},
        "x_forwarded": {"type": "boolean"},
        "request_id_header": {"type": "string"},
        "tag": {"type": "string"},
        "resources": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "names": {"type": "array", "items": {"enum": RESOURCE_NAMES}},
                    "compress": {"type": "boolean"},
                },
                "required": ["names"],
            },
        },
    },
    "required": ["type"],
    "anyOf": [{"required": ["port"]}, {"required": ["path"]}],
}

_SIZE_RE = re.compile(r"^(\d+)\s*([KMG]?)B?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(value: int | str) -> int:
    """`"50M"` -> 52428800; an int is a number of bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a size such as 10K, 50M or 1G")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


@dataclass
class ListenerConfig:
    type: str
    port: int
    bind_addresses: list[str]
    x_forwarded: bool = False
    resources: set[str] = field(default_factory=set)
    tls: bool = False


def read_listeners(raw: RawConfig, key: str) -> list[ListenerConfig]:
    listeners = []
    for index, item in enumerate(raw.get(key) or []):
        if item["type"] == "replication":
            raise raw.error(
                "direct TCP replication is not supported: replication runs over Redis; "
                "use a `type: http` listener with the `replication` resource",
                key, index, "type",
            )
        if item.get("tls"):
            raise raw.error("TLS listeners are not supported; terminate TLS in the reverse proxy", key, index, "tls")
        if "path" in item:
            raise raw.error("unix socket listeners are not supported yet; use `port`", key, index, "path")
        binds = item.get("bind_addresses") or (
            [item["bind_address"]] if "bind_address" in item else ["::", "0.0.0.0"]
        )
        names: set[str] = set()
        for resource in item.get("resources") or []:
            names.update(resource["names"])
        if item["type"] == "metrics":
            names = {"metrics"}
        listeners.append(
            ListenerConfig(
                type=item["type"],
                port=item["port"],
                bind_addresses=binds,
                x_forwarded=bool(item.get("x_forwarded", False)),
                resources=names,
            )
        )
    return listeners


class ServerConfig(Section):
    SCHEMA = {
        "server_name": {"type": "string", "minLength": 1, "pattern": r"^[A-Za-z0-9.\-:\[\]]+$"},
        "public_baseurl": {"type": "string", "pattern": "^https?://"},
        "listeners": {"type": "array", "items": LISTENER_SCHEMA},
        "pid_file": {"type": "string"},
        "daemonize": {"type": "boolean"},
        "max_upload_size": {"type": ["integer", "string"]},
        "web_client_location": {"type": "string"},
        "soft_file_limit": {"type": "integer"},
        "serve_server_wellknown": {"type": "boolean"},
        "admin_contact": {"type": "string"},
        "require_auth_for_profile_requests": {"type": "boolean"},
        "limit_profile_requests_to_users_who_share_rooms": {"type": "boolean"},
        "default_room_version": {"type": "string"},
        "max_request_body_size": {"type": ["integer", "string"]},
    }

    def read(self, raw: RawConfig) -> None:
        if "server_name" not in raw.values:
            raise raw.error("required key is missing (the domain part of your user ids)", "server_name")
        self.server_name: str = raw.get("server_name")
        base = raw.get("public_baseurl") or f"https://{self.server_name}/"
        self.public_baseurl: str = base if base.endswith("/") else base + "/"
        self.listeners = read_listeners(raw, "listeners")
        self.pid_file: str | None = raw.get("pid_file")
        self.daemonize: bool = bool(raw.get("daemonize", False))
        self.default_room_version: str = str(raw.get("default_room_version", "10"))
        self.require_auth_for_profile_requests = bool(raw.get("require_auth_for_profile_requests", False))
        self.limit_profile_requests_to_users_who_share_rooms = bool(
            raw.get("limit_profile_requests_to_users_who_share_rooms", False)
        )
        try:
            self.max_upload_size = parse_size(raw.get("max_upload_size", "50M"))
        except ValueError as e:
            raise raw.error(str(e), "max_upload_size") from e
        try:
            self.max_request_body_size = parse_size(raw.get("max_request_body_size", "10M"))
        except ValueError as e:
            raise raw.error(str(e), "max_request_body_size") from e
