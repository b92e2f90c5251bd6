"""A whole deployment read from its config files: the main process and every worker, with
their listeners and the streams they write. Each process's config is the shared file(s)
followed by its own worker file, exactly as the process itself would load it."""

import os
from dataclasses import dataclass, field

from homeserver.config import ConfigError, HomeServerConfig, load_config
from homeserver.config.homeserver import config_files
from homeserver.config.server import ListenerConfig
from homeserver.config.workers import MAIN_INSTANCE, STREAM_WRITER_STREAMS


@dataclass
class Process:
    name: str
    config: HomeServerConfig
    # The config files this process is started with (shared first).
    files: list[str]
    # The worker's own file (None for the main process).
    worker_file: str | None = None

    @property
    def is_main(self) -> bool:
        return self.name == MAIN_INSTANCE

    @property
    def listeners(self) -> list[ListenerConfig]:
        return list(self.config.listeners)

    def address_for(self, resource: str) -> tuple[str, int] | None:
        """Where this process serves `resource` (first matching listener), as host, port; a
        wildcard bind address is reached on loopback."""
        for listener in self.listeners:
            if listener.type == "http" and resource in listener.resources:
                host = listener.bind_addresses[0] if listener.bind_addresses else "127.0.0.1"
                if host in ("0.0.0.0", "::", ""):
                    host = "127.0.0.1"
                return host, listener.port
        return None

    def streams_written(self) -> list[str]:
        writers = self.config.worker.stream_writers
        return [s for s in STREAM_WRITER_STREAMS if self.name in writers.get(s, [])]


@dataclass
class Deployment:
    main: Process
    workers: list[Process] = field(default_factory=list)

    @property
    def processes(self) -> list[Process]:
        return [self.main, *self.workers]

    def get(self, name: str) -> Process | None:
        name = MAIN_INSTANCE if name == "main" else name
        return next((p for p in self.processes if p.name == name), None)

    @property
    def shared(self) -> HomeServerConfig:
        return self.main.config


def worker_files(paths: list[str]) -> list[str]:
    """Worker config files: given files, and the .yaml files of given directories."""
    files = config_files(paths)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise ConfigError("no such file or directory", file=missing[0])
    return files


def load_deployment(config_paths: list[str], worker_paths: list[str] | None = None,
                    errors: list[str] | None = None) -> Deployment:
    """Load the main process's config from `config_paths` and each worker's from
    `config_paths` + its file. A broken shared config raises ConfigError; with `errors`,
    a broken worker file is reported there (`file: key: problem`) and left out, so that
    every file's mistake can be shown at once."""
    main_config = load_config(list(config_paths))
    shared_files = config_files(list(config_paths))
    deployment = Deployment(Process(main_config.instance_name, main_config, shared_files))
    for path in worker_files(list(worker_paths or [])):
        try:
            config = load_config([*config_paths, path])
            if config.worker.is_main:
                if config.raw.get("worker_app"):
                    continue  # a Synapse-style file for the main process (synapse.app.homeserver)
                raise ConfigError("is not a worker file: it has no `worker_app`", file=path)
        except ConfigError as e:
            if errors is None:
                raise
            errors.append(str(e))
            continue
        deployment.workers.append(Process(config.instance_name, config, [*shared_files, path], path))
    return deployment
