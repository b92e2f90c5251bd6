"""Worker settings: which process this is, where the others are, and who writes each stream.

The main process is called `master` internally; `main` is accepted as the same name everywhere
(`instance_map`, `stream_writers` and the job settings).
"""

from dataclasses import dataclass
from typing import Any

from homeserver.config._base import RawConfig, Section
from homeserver.config.server import LISTENER_SCHEMA, ListenerConfig, read_listeners

MAIN_INSTANCE = "master"

# Legacy worker app names; each starts a generic worker.
LEGACY_WORKER_APPS = {
    "client_reader", "event_creator", "federation_reader", "federation_sender", "frontend_proxy",
    "pusher", "synchrotron", "media_repository", "user_dir", "appservice", "generic_worker",
}

# Streams whose writer can be moved to a worker, and whether several writers are allowed.
STREAM_WRITER_STREAMS = {
    "events": True, "typing": False, "to_device": False, "account_data": False,
    "receipts": True, "presence": False, "push_rules": False, "device_lists": True,
}

_INSTANCE_LIST = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def normalise_instance(name: str) -> str:
    return MAIN_INSTANCE if name == "main" else name


@dataclass
class InstanceLocation:
    host: str
    port: int
    tls: bool = False


def app_name(value: str) -> str:
    """`synapse.app.X` and `homeserver.app.X` both become `X`."""
    for prefix in ("synapse.app.", "homeserver.app."):
        if value.startswith(prefix):
            return value[len(prefix):]
    return value


class WorkerConfig(Section):
    SCHEMA = {
        "worker_app": {"type": "string"},
        "worker_name": {"type": "string", "minLength": 1, "pattern": r"^[A-Za-z0-9_.\-]+$"},
        "worker_listeners": {"type": "array", "items": LISTENER_SCHEMA},
        "worker_log_config": {"type": "string"},
        "worker_pid_file": {"type": "string"},
        "worker_daemonize": {"type": "boolean"},
        "worker_replication_host": {"type": "string"},
        "worker_replication_http_port": {"type": "integer"},
        "worker_replication_http_tls": {"type": "boolean"},
        "worker_replication_secret": {"type": "string"},
        "worker_replication_secret_path": {"type": "string"},
        "instance_map": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "host": {"type": "string"},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "tls": {"type": "boolean"},
                    "path": {"type": "string"},
                },
            },
        },
        "stream_writers": {
            "type": "object",
            "additionalProperties": _INSTANCE_LIST,
        },
        "run_background_tasks_on": {"type": "string"},
        "federation_sender_instances": {"type": "array", "items": {"type": "string"}},
        "pusher_instances": {"type": "array", "items": {"type": "string"}},
        "notify_appservices_from_worker": {"type": "string"},
        "update_user_directory_from_worker": {"type": "string"},
        "media_instance_running_background_jobs": {"type": "string"},
        "outbound_federation_restricted_to": {"type": "array", "items": {"type": "string"}},
        "start_pushers": {"type": "boolean"},
        "send_federation": {"type": "boolean"},
        "update_user_directory": {"type": "boolean"},
        "notify_appservices": {"type": "boolean"},
        "enable_media_repo": {"type": "boolean"},
    }

    def read(self, raw: RawConfig) -> None:
        app = app_name(raw.get("worker_app") or "homeserver")
        if app not in LEGACY_WORKER_APPS | {"homeserver"}:
            raise raw.error(f"unknown worker app {raw.get('worker_app')!r}", "worker_app")
        self.worker_app: str | None = None if app == "homeserver" else app
        self.instance_name: str = MAIN_INSTANCE
        if self.worker_app:
            self.instance_name = raw.get("worker_name") or self.worker_app
        elif raw.get("worker_name") not in (None, "main", "master"):
            raise raw.error("is set but `worker_app` is not; is this a worker file?", "worker_name")
        self.listeners: list[ListenerConfig] = read_listeners(raw, "worker_listeners")
        self.log_config: str | None = raw.get("worker_log_config")
        self.pid_file: str | None = raw.get("worker_pid_file")
        self.daemonize: bool = bool(raw.get("worker_daemonize", False))
        self.replication_secret = self._read_secret(raw)
        self.instance_map = self._read_instance_map(raw)
        self.stream_writers = self._read_stream_writers(raw)
        self.run_background_tasks_on = normalise_instance(raw.get("run_background_tasks_on", MAIN_INSTANCE))

    @property
    def is_main(self) -> bool:
        return self.worker_app is None

    def _read_secret(self, raw: RawConfig) -> str | None:
        if raw.get("worker_replication_secret") and raw.get("worker_replication_secret_path"):
            raise raw.error("set one of worker_replication_secret and its _path, not both", "worker_replication_secret_path")
        path = raw.get("worker_replication_secret_path")
        if path:
            try:
                with open(path) as f:
                    return f.read().strip()
            except OSError as e:
                raise raw.error(f"cannot read the file: {e.strerror}", "worker_replication_secret_path") from e
        return raw.get("worker_replication_secret")

    def _read_instance_map(self, raw: RawConfig) -> dict[str, InstanceLocation]:
        result: dict[str, InstanceLocation] = {}
        for name, entry in (raw.get("instance_map") or {}).items():
            if "path" in entry:
                raise raw.error("unix socket instances are not supported yet; use host and port", "instance_map", name, "path")
            if "host" not in entry or "port" not in entry:
                raise raw.error("needs `host` and `port`", "instance_map", name)
            result[normalise_instance(name)] = InstanceLocation(entry["host"], entry["port"], bool(entry.get("tls")))
        legacy_host = raw.get("worker_replication_host")
        legacy_port = raw.get("worker_replication_http_port")
        if legacy_host and legacy_port and MAIN_INSTANCE not in result:
            result[MAIN_INSTANCE] = InstanceLocation(legacy_host, legacy_port)
        return result

    def _read_stream_writers(self, raw: RawConfig) -> dict[str, list[str]]:
        writers: dict[str, list[str]] = {s: [MAIN_INSTANCE] for s in STREAM_WRITER_STREAMS}
        for stream, value in (raw.get("stream_writers") or {}).items():
            if stream not in STREAM_WRITER_STREAMS:
                raise raw.error(f"unknown stream; known streams: {', '.join(STREAM_WRITER_STREAMS)}", "stream_writers", stream)
            names = [value] if isinstance(value, str) else list(value)
            if not names:
                raise raw.error("needs at least one instance", "stream_writers", stream)
            if len(names) > 1 and not STREAM_WRITER_STREAMS[stream]:
                raise raw.error("this stream must have exactly one writer", "stream_writers", stream)
            writers[stream] = [normalise_instance(n) for n in names]
            for name in writers[stream]:
                if name != MAIN_INSTANCE and name not in self.instance_map:
                    raise raw.error(f"instance {name!r} writes this stream but is missing from `instance_map`", "stream_writers", stream)
        return writers

    def writers_of(self, stream: str) -> list[str]:
        return self.stream_writers.get(stream, [MAIN_INSTANCE])

    def location_of(self, instance: str) -> Any:
        return self.instance_map.get(normalise_instance(instance))
