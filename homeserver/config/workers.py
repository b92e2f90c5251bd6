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
        "worker_app": {
            "type": "string",
            "description": "Which program this process is. Unset (or `synapse.app.homeserver`) "
            "for the main process; `synapse.app.generic_worker` for a worker. Synapse's older "
            "worker names (`client_reader`, `synchrotron`, `federation_sender`, `pusher`, ...) "
            "start a generic worker too; the `synapse.app.` or `homeserver.app.` prefix is "
            "optional. Goes in the worker's own file.",
        },
        "worker_name": {
            "type": "string", "minLength": 1, "pattern": r"^[A-Za-z0-9_.\-]+$",
            "description": "This worker's unique name, as used in `instance_map`, "
            "`stream_writers` and the job settings. Default: the app name without its prefix "
            "(for example `generic_worker`). Refused without `worker_app`, except `main` or "
            "`master`, which name the main process.",
        },
        "worker_listeners": {
            "type": "array", "items": LISTENER_SCHEMA,
            "description": "The worker's listeners, in the same format as `listeners`. Default: "
            "none.",
        },
        "worker_log_config": {
            "type": "string",
            "description": "The worker's logging config file, in the same format as "
            "`log_config`. Default: the shared `log_config`.",
        },
        "worker_pid_file": {
            "type": "string",
            "description": "File the worker writes its process id to once it is serving. "
            "Default: none.",
        },
        "worker_daemonize": {
            "type": "boolean",
            "description": "Detach the worker into the background once it is serving. Default "
            "`false`.",
        },
        "worker_replication_host": {
            "type": "string",
            "description": "The older way for a worker to find the main process: with "
            "`worker_replication_http_port` it stands in for `instance_map.main` when that entry "
            "is missing.",
        },
        "worker_replication_http_port": {
            "type": "integer",
            "description": "Port of the main process's replication listener, for "
            "`worker_replication_host`.",
        },
        "worker_replication_http_tls": {
            "type": "boolean",
            "description": "Whether that older setting's listener uses TLS. Accepted and "
            "ignored; to call the main process over HTTPS use `instance_map.main.tls`.",
        },
        "worker_replication_secret": {
            "type": "string",
            "description": "A secret every call between processes must carry (as a bearer "
            "token). Default: none, and such calls are then not checked, so set it whenever a "
            "replication listener is reachable from beyond the host.",
        },
        "worker_replication_secret_path": {
            "type": "string",
            "description": "A file holding `worker_replication_secret` (surrounding whitespace "
            "is dropped). Set one of the two.",
        },
        "instance_map": {
            "type": "object",
            "description": "Where each process that others call can be reached: instance name "
            "to the address of its listener with the `replication` resource. `main` (or "
            "`master`) is the main process. Default: empty.",
            "additionalProperties": {
                "type": "object",
                "description": "One instance's replication listener.",
                "properties": {
                    "host": {
                        "type": "string",
                        "description": "Host name or address of the listener. Required.",
                    },
                    "port": {
                        "type": "integer", "minimum": 1, "maximum": 65535,
                        "description": "Port of the listener. Required.",
                    },
                    "tls": {
                        "type": "boolean",
                        "description": "Call this instance over HTTPS. Default `false`.",
                    },
                    "path": {
                        "type": "string",
                        "description": "A unix socket in place of `host` and `port`. Not "
                        "supported yet: the process refuses to start with it.",
                    },
                },
            },
        },
        "stream_writers": {
            "type": "object",
            "description": "Which instance writes each stream: stream name to an instance name "
            "or a list of names. Streams: `events`, `typing`, `to_device`, `account_data`, "
            "`receipts`, `presence`, `push_rules`, `device_lists`; only `events`, `receipts` and "
            "`device_lists` may have several writers, and every writer but the main process "
            "must be in `instance_map`. Default: the main process writes every stream.",
            "additionalProperties": _INSTANCE_LIST,
        },
        "run_background_tasks_on": {
            "type": "string",
            "description": "The one instance that runs the periodic housekeeping jobs. Default "
            "`master` (the main process; `main` means the same).",
        },
        "federation_sender_instances": {
            "type": "array", "items": {"type": "string"},
            "description": "Synapse's list of workers that send federation traffic. Accepted "
            "(`homeserver check-config` checks the names) but nothing is sent: this server does "
            "not federate yet.",
        },
        "pusher_instances": {
            "type": "array", "items": {"type": "string"},
            "description": "Synapse's list of workers that deliver push notifications. Accepted "
            "(`homeserver check-config` checks the names) but pushers are not built yet.",
        },
        "notify_appservices_from_worker": {
            "type": "string",
            "description": "The worker Synapse uses to notify application services. Accepted "
            "and checked by `homeserver check-config`; application services are not built yet.",
        },
        "update_user_directory_from_worker": {
            "type": "string",
            "description": "The worker Synapse uses to keep the user directory current. "
            "Accepted for compatibility: here a profile change updates the directory itself, on "
            "whichever process makes it, and who may see whom is worked out at search time, so "
            "there is no updater to place.",
        },
        "media_instance_running_background_jobs": {
            "type": "string",
            "description": "The worker Synapse uses for media clean-up jobs. Accepted and "
            "ignored; the media repository is not built yet.",
        },
        "outbound_federation_restricted_to": {
            "type": "array", "items": {"type": "string"},
            "description": "Synapse's list of workers allowed to make outgoing federation "
            "requests. Accepted and ignored: this server does not federate yet.",
        },
        "start_pushers": {
            "type": "boolean",
            "description": "Synapse's older switch for sending push notifications from the main "
            "process. Accepted for compatibility (and checked against `pusher` workers by "
            "`homeserver check-config`); pushers are not built yet, so nothing is sent.",
        },
        "send_federation": {
            "type": "boolean",
            "description": "Synapse's older switch for sending federation traffic from the main "
            "process. Accepted for compatibility (and checked against `federation_sender` "
            "workers by `homeserver check-config`); this server does not federate yet.",
        },
        "update_user_directory": {
            "type": "boolean",
            "description": "Synapse's older switch for updating the user directory on the main "
            "process. Accepted and ignored: each profile change updates the directory itself.",
        },
        "notify_appservices": {
            "type": "boolean",
            "description": "Synapse's older switch for notifying application services from the "
            "main process. Accepted and ignored; application services are not built yet.",
        },
        "enable_media_repo": {
            "type": "boolean",
            "description": "Synapse's switch for serving media from the main process. Accepted "
            "(and checked against `media_repository` workers by `homeserver check-config`); "
            "the media repository is not built yet.",
        },
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
