"""Load a deployment's config files into one `HomeServerConfig`.

Files are read in order (a directory contributes its `*.yaml` files in name order) and merged
at the top level: a later file's key replaces an earlier one's. Each section's jsonschema is
checked, then each section reads its keys. Unknown keys are logged as warnings.
"""

import os
from typing import Any

import yaml

from homeserver.config._base import ConfigError, RawConfig, Section, format_key_path
from homeserver.config.database import DatabaseConfig
from homeserver.config.key import KeyConfig
from homeserver.config.logger import LoggingConfig
from homeserver.config.metrics import MetricsConfig
from homeserver.config.presence import PresenceConfig
from homeserver.config.ratelimiting import RatelimitConfig
from homeserver.config.redis import RedisConfig
from homeserver.config.registration import RegistrationConfig
from homeserver.config.server import ServerConfig
from homeserver.config.user_directory import UserDirectoryConfig
from homeserver.config.validation import SchemaError, first_error
from homeserver.config.voip import VoipConfig
from homeserver.config.workers import WorkerConfig

# Synapse keys that this server accepts but does not act on yet.
UNSUPPORTED_SYNAPSE_KEYS = {
    "media_store_path", "url_preview_enabled", "caches", "event_cache_size", "email", "sso",
    "oidc_providers", "saml2_config", "cas_config", "jwt_config",
    "push", "app_service_config_files", "federation_domain_whitelist",
    "trusted_third_party_id_servers", "room_list_publication_rules", "retention",
    "experimental_features", "modules", "opentracing", "spam_checker", "stats",
    "encryption_enabled_by_default_for_room_type", "autocreate_auto_join_rooms",
    "allow_public_rooms_over_federation", "allow_public_rooms_without_auth",
    "media_storage_providers", "thumbnail_sizes", "dynamic_thumbnails", "max_image_pixels",
    "forgotten_room_retention_period", "redaction_retention_period", "user_ips_max_age",
    "room_prejoin_state", "include_profile_data_on_invite", "ip_range_blacklist",
    "ip_range_whitelist", "federation_ip_range_blacklist", "manhole_settings",
    "tls_certificate_path", "tls_private_key_path", "acme",
}


class HomeServerConfig:
    """All sections of one process's configuration."""

    def __init__(self, raw: RawConfig):
        self.raw = raw
        self.warnings: list[str] = []
        self.server = ServerConfig()
        self.database = DatabaseConfig()
        self.redis = RedisConfig()
        self.worker = WorkerConfig()
        self.registration = RegistrationConfig()
        self.ratelimiting = RatelimitConfig()
        self.logging = LoggingConfig()
        self.key = KeyConfig()
        self.metrics = MetricsConfig()
        self.voip = VoipConfig()
        self.user_directory = UserDirectoryConfig()
        self.presence = PresenceConfig()

    def sections(self) -> list[Section]:
        return [
            self.server, self.database, self.redis, self.worker, self.registration,
            self.ratelimiting, self.logging, self.key, self.metrics, self.voip, self.user_directory,
            self.presence,
        ]

    @property
    def instance_name(self) -> str:
        return self.worker.instance_name

    @property
    def listeners(self) -> list[Any]:
        return self.worker.listeners if not self.worker.is_main else self.server.listeners

    def read(self) -> None:
        for section in self.sections():
            section.read(self.raw)
        self._check_worker_needs()

    def _check_worker_needs(self) -> None:
        if self.worker.is_main:
            return
        if self.database.is_sqlite:
            raise self.raw.error(
                "workers need PostgreSQL (SQLite serves only a single process); set name: psycopg2",
                "database", "name",
            )
        if not self.redis.enabled:
            raise self.raw.error(
                "workers need Redis for replication; set redis: {enabled: true, host: ..., port: ...}",
                "redis", "enabled",
            )


def config_files(paths: list[str]) -> list[str]:
    """Expand directories into their .yaml files, sorted; keep files in the given order."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            entries = sorted(e for e in os.listdir(path) if e.endswith((".yaml", ".yml")))
            files.extend(os.path.join(path, e) for e in entries)
        else:
            files.append(path)
    return files


def read_raw(paths: list[str]) -> RawConfig:
    raw = RawConfig()
    for path in config_files(paths):
        try:
            with open(path) as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"cannot read the file: {e.strerror}", file=path) from e
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise ConfigError(f"{where}not valid YAML: {getattr(e, 'problem', e)}", file=path) from e
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("the file must hold a mapping of config keys", file=path)
        raw.files.append(path)
        for key, value in data.items():
            raw.values[str(key)] = value
            raw.origins[str(key)] = path
    if not raw.files:
        raise ConfigError("no config files found", file=", ".join(paths))
    return raw


def combined_schema(config: HomeServerConfig) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for section in config.sections():
        properties.update(section.SCHEMA)
    return {"type": "object", "properties": properties}


def validate_schema(raw: RawConfig, schema: dict[str, Any]) -> None:
    error = first_error(raw.values, schema)
    if error is not None:
        path = list(error.path)
        raise raw.error(_describe(error), *path) if path else ConfigError(_describe(error), file=raw.files[-1])


def _describe(error: SchemaError) -> str:
    if error.keyword == "enum":
        return f"{error.value!r} is not one of " + ", ".join(repr(v) for v in error.rule)
    if error.keyword == "anyOf" and all("required" in option for option in error.rule):
        keys = " or ".join(f"`{option['required'][0]}`" for option in error.rule)
        return f"needs {keys}"
    if error.keyword == "required":
        return error.message.replace("is a required property", "is required")
    return error.message


def warn_unknown_keys(raw: RawConfig, schema: dict[str, Any]) -> list[str]:
    warnings = []
    for key in raw.values:
        if key in schema["properties"]:
            continue
        where = f"{raw.origins[key]}: {format_key_path([key])}"
        if key in UNSUPPORTED_SYNAPSE_KEYS:
            warnings.append(f"{where}: this Synapse setting is not supported yet and is ignored")
        else:
            warnings.append(f"{where}: unknown config key, ignored")
    return warnings


def load_config(paths: list[str]) -> HomeServerConfig:
    raw = read_raw(paths)
    config = HomeServerConfig(raw)
    schema = combined_schema(config)
    validate_schema(raw, schema)
    config.warnings = warn_unknown_keys(raw, schema)
    config.read()
    return config
