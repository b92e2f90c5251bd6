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
        "port": {
            "type": "integer", "minimum": 0, "maximum": 65535,
            "description": "TCP port to listen on. Every listener needs `port` (or `path`).",
        },
        "path": {
            "type": "string",
            "description": "A unix socket path in place of `port`. Not supported yet: the process "
            "refuses to start with it.",
        },
        "mode": {
            "type": ["integer", "string"],
            "description": "Permissions of a unix socket listener. Accepted for compatibility with "
            "Synapse; has no effect, as unix socket listeners are not supported.",
        },
        "bind_addresses": {
            "type": "array", "items": {"type": "string"},
            "description": "Addresses to listen on. Default `['::', '0.0.0.0']` (every interface); "
            "behind a reverse proxy on the same host use `['127.0.0.1']`.",
        },
        "bind_address": {
            "type": "string",
            "description": "A single address to listen on, used when `bind_addresses` is not set.",
        },
        "type": {
            "enum": ["http", "metrics", "manhole", "replication"],
            "description": "`http` serves the resources listed in `resources`; `metrics` serves only "
            "Prometheus metrics and the health check; `manhole` is skipped with a warning; "
            "`replication` (Synapse's direct TCP replication) is refused, since replication runs "
            "over Redis here. Required.",
        },
        "tls": {
            "type": "boolean",
            "description": "TLS on the listener itself. Not supported: `true` is refused at start-up; "
            "terminate TLS in the reverse proxy. Default `false`.",
        },
        "x_forwarded": {
            "type": "boolean",
            "description": "Take the client's address from the first entry of the "
            "`X-Forwarded-For` header (for rate limits and logs). Set it when a reverse proxy "
            "sits in front. Default `false`.",
        },
        "request_id_header": {
            "type": "string",
            "description": "Header carrying a request id set by the reverse proxy. Accepted for "
            "compatibility with Synapse and ignored; the server makes its own request ids.",
        },
        "tag": {
            "type": "string",
            "description": "A label Synapse adds to this listener's metrics. Accepted and ignored.",
        },
        "resources": {
            "type": "array",
            "description": "The groups of endpoints this listener serves, as a list of "
            "`{names: [...]}` entries.",
            "items": {
                "type": "object",
                "properties": {
                    "names": {
                        "type": "array", "items": {"enum": RESOURCE_NAMES},
                        "description": "`client` (the client-server API and the admin API), "
                        "`replication` (calls between processes, which also brings the client "
                        "API; never expose it publicly), `metrics` (`/_synapse/metrics`) and "
                        "`health` (`/health`, which every HTTP listener answers anyway). "
                        "`federation`, `keys`, `media`, `openid`, `static` and `consent` are "
                        "accepted but have no endpoints yet; `media` raises this listener's "
                        "body size limit to `max_upload_size`.",
                    },
                    "compress": {
                        "type": "boolean",
                        "description": "Compress responses. Accepted for compatibility with "
                        "Synapse and ignored; let the reverse proxy compress.",
                    },
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
        "server_name": {
            "type": "string", "minLength": 1, "pattern": r"^[A-Za-z0-9.\-:\[\]]+$",
            "description": "The domain name of this server: the part after the colon in every "
            "user id and room alias made here. It cannot be changed once users exist. Required.",
        },
        "public_baseurl": {
            "type": "string", "pattern": "^https?://",
            "description": "The URL at which clients reach this server (usually through the "
            "reverse proxy). Default `https://<server_name>/`; a missing final slash is added.",
        },
        "listeners": {
            "type": "array", "items": LISTENER_SCHEMA,
            "description": "The ports the main process listens on and what each one serves "
            "(see the `listeners[]` rows). Default: none. Workers use `worker_listeners`.",
        },
        "pid_file": {
            "type": "string",
            "description": "File the main process writes its process id to once it is serving, "
            "and removes when it stops (synctl uses it). Default: none, no file is written.",
        },
        "daemonize": {
            "type": "boolean",
            "description": "Detach the main process into the background once it is serving, as "
            "`--daemonize` does. Default `false`.",
        },
        "max_upload_size": {
            "type": ["integer", "string"],
            "description": "Largest media upload: the body size limit of listeners with the "
            "`media` resource (unless `max_request_body_size` is larger). A number of bytes, or a "
            "number with `K`, `M` or `G` (powers of 1024). Default `50M`.",
        },
        "web_client_location": {
            "type": "string",
            "description": "Where Synapse sends browsers that open its root page. Accepted and "
            "ignored; this server serves no web client.",
        },
        "soft_file_limit": {
            "type": "integer",
            "description": "Synapse raises its open-file limit to this number at start-up. "
            "Accepted and ignored; set the limit in the service manager instead (for example "
            "`LimitNOFILE=` in a systemd unit).",
        },
        "serve_server_wellknown": {
            "type": "boolean",
            "description": "Makes Synapse serve `/.well-known/matrix/server`. Accepted and "
            "ignored; serve that file from the reverse proxy if you need it.",
        },
        "admin_contact": {
            "type": "string",
            "description": "An address Synapse shows to users in some error messages. Accepted "
            "and ignored.",
        },
        "require_auth_for_profile_requests": {
            "type": "boolean",
            "description": "When true, profile look-ups (`GET /profile/...`) need an access "
            "token. Default `false`.",
        },
        "limit_profile_requests_to_users_who_share_rooms": {
            "type": "boolean",
            "description": "When true, a signed-in user may only look up the profiles of users "
            "who share a room with them (and their own); it acts on look-ups that carry an "
            "access token, so pair it with `require_auth_for_profile_requests`. Default `false`.",
        },
        "default_room_version": {
            "type": "string",
            "description": "Room version of new rooms that do not ask for one, as advertised in "
            "`/capabilities`. Default `10`.",
        },
        "max_request_body_size": {
            "type": ["integer", "string"],
            "description": "Largest request body accepted on listeners without the `media` "
            "resource (bytes, or a number with `K`, `M` or `G`); bigger requests get 413 "
            "`M_TOO_LARGE`. Default `10M`.",
        },
        "request_read_timeout": {
            "type": "number", "minimum": 0.1,
            "description": "Seconds a client has to send a whole request (request line, headers "
            "and body), counted from the opening of its connection, or on a kept-alive "
            "connection from the first byte of the request. A client still sending after that "
            "gets 408 `M_UNKNOWN` and is disconnected (one that sent nothing is just "
            "disconnected), so slow clients cannot hold connections open forever. Only receiving "
            "the request is timed: a long-polling `/sync` may wait as long as it asks. A "
            "kept-alive connection may sit idle between requests for 300 seconds (or this long, "
            "if longer). Default `60`.",
        },
        "max_waiting_syncs_per_user": {
            "type": "integer", "minimum": 1,
            "description": "How many long-polling `/sync` and `/events` requests of one user may "
            "wait for news at once in one process. A further one makes the oldest waiting one "
            "return at once, empty and with the token it was given, so that the client simply "
            "polls again. Default `10`.",
        },
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
        self.request_read_timeout = float(raw.get("request_read_timeout", 60))
        self.max_waiting_syncs_per_user = int(raw.get("max_waiting_syncs_per_user", 10))
