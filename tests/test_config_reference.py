"""docs/config_reference.md is generated from the config schemas and never goes stale; every key
has a description; and the defaults the descriptions state are the ones a loaded config has."""

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.config import HomeServerConfig, load_config
from homeserver.config._base import RawConfig
from homeserver.config.homeserver import combined_schema
from homeserver.config.key import write_new_signing_key
from homeserver.config.ratelimiting import DEFAULTS
from homeserver.config.reference import COMMAND, render, render_type
from homeserver.config.server import parse_size
from homeserver.config.voip import parse_duration_ms

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "config_reference.md"
SERVER_NAME = "example.org"


def all_sections() -> list[Any]:
    return HomeServerConfig(RawConfig()).sections()


def schema_properties() -> dict[str, Any]:
    return combined_schema(HomeServerConfig(RawConfig()))["properties"]  # type: ignore[no-any-return]


def description_of(path: str) -> str:
    """The description of a key given as `a.b.c` (nested `properties`)."""
    parts = path.split(".")
    schema = schema_properties()[parts[0]]
    for part in parts[1:]:
        schema = schema["properties"][part]
    return str(schema.get("description", ""))


def nested_keys(path: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    targets = [schema]
    if isinstance(schema.get("items"), dict):
        targets.append(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        targets.append(schema["additionalProperties"])
    for target in targets:
        for name, child in (target.get("properties") or {}).items():
            yield f"{path}.{name}", child
            yield from nested_keys(f"{path}.{name}", child)


# --- (a) the reference is the generator's output ----------------------------------------------


def test_reference_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "homeserver.config.reference"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == render()
    stale = f"docs/config_reference.md is out of date with the config schemas; regenerate it with: {COMMAND}"
    assert REFERENCE.exists(), stale
    assert REFERENCE.read_text() == result.stdout, stale


def test_reference_lists_every_key_and_the_unsupported_synapse_keys() -> None:
    text = REFERENCE.read_text()
    assert "generated" in text.lower() and COMMAND in text
    for key in schema_properties():
        assert f"| `{key}` |" in text, key
    assert "| `listeners[].port` |" in text
    assert "| `database.args.cp_min` |" in text
    assert "| `instance_map.<name>.host` |" in text
    assert "| `rc_message.per_second` |" in text
    unsupported = text.split("## Synapse keys accepted but not supported yet", 1)[1]
    assert "- `url_preview_enabled`" in unsupported and "- `media_store_path`" in unsupported


@pytest.mark.parametrize(
    "schema,expected",
    [
        ({"type": "integer", "minimum": 0, "maximum": 65535}, "integer, 0 to 65535"),
        ({"type": ["integer", "string"]}, "integer or string"),
        ({"enum": ["psycopg2", "sqlite3"]}, "one of `psycopg2`, `sqlite3`"),
        ({"type": "array", "items": {"type": "string"}}, "list of strings"),
        ({"type": "string", "minLength": 1, "pattern": "^a+$"}, "string, non-empty, matching `^a+$`"),
        ({"anyOf": [{"type": "boolean"}, {"const": "untracked"}]}, "boolean or `untracked`"),
        ({"type": "number", "minimum": 0}, "number, at least 0"),
    ],
)
def test_types_are_rendered_readably(schema: dict[str, Any], expected: str) -> None:
    assert render_type(schema) == expected


# --- (b) every key is described ---------------------------------------------------------------


def test_every_top_level_key_has_a_description() -> None:
    missing = [
        f"{type(section).__name__}: {key}"
        for section in all_sections()
        for key, schema in section.SCHEMA.items()
        if not str(schema.get("description", "")).strip()
    ]
    assert not missing, missing


def test_every_nested_key_has_a_description() -> None:
    missing = [
        path
        for section in all_sections()
        for key, schema in section.SCHEMA.items()
        for path, child in nested_keys(key, schema)
        if not str(child.get("description", "")).strip()
    ]
    assert not missing, missing


# --- (c) the stated defaults are the real ones ------------------------------------------------


@pytest.fixture(scope="module")
def minimal_config(tmp_path_factory: pytest.TempPathFactory) -> HomeServerConfig:
    """A config with nothing but `server_name`, loaded from a directory that holds the signing
    key under its default name; everything else takes its default."""
    directory = tmp_path_factory.mktemp("minimal")
    write_new_signing_key(str(directory / f"{SERVER_NAME}.signing.key"))
    path = directory / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"server_name": SERVER_NAME}))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        return load_config([str(path)])


def stated_default(path: str) -> str:
    match = re.search(r"Default `([^`]*)`", description_of(path))
    assert match, f"the description of {path} states no default: {description_of(path)!r}"
    return match.group(1)


def with_server_name(text: str) -> str:
    return text.replace("<server_name>", SERVER_NAME)


# key path -> (turns the stated default into a value, the value the loaded config has)
DEFAULT_CASES: dict[str, tuple[Callable[[str], Any], Callable[[HomeServerConfig], Any]]] = {
    "public_baseurl": (with_server_name, lambda c: c.server.public_baseurl),
    "max_upload_size": (parse_size, lambda c: c.server.max_upload_size),
    "max_request_body_size": (parse_size, lambda c: c.server.max_request_body_size),
    "default_room_version": (str, lambda c: c.server.default_room_version),
    "daemonize": (yaml.safe_load, lambda c: c.server.daemonize),
    "require_auth_for_profile_requests": (yaml.safe_load, lambda c: c.server.require_auth_for_profile_requests),
    "limit_profile_requests_to_users_who_share_rooms": (
        yaml.safe_load, lambda c: c.server.limit_profile_requests_to_users_who_share_rooms,
    ),
    "database.args.cp_min": (yaml.safe_load, lambda c: c.database.cp_min),
    "database.args.cp_max": (yaml.safe_load, lambda c: c.database.cp_max),
    "redis.enabled": (yaml.safe_load, lambda c: c.redis.enabled),
    "redis.host": (str, lambda c: c.redis.host),
    "redis.port": (yaml.safe_load, lambda c: c.redis.port),
    "worker_daemonize": (yaml.safe_load, lambda c: c.worker.daemonize),
    "run_background_tasks_on": (str, lambda c: c.worker.run_background_tasks_on),
    "enable_registration": (yaml.safe_load, lambda c: c.registration.enable_registration),
    "bcrypt_rounds": (yaml.safe_load, lambda c: c.registration.bcrypt_rounds),
    "allow_guest_access": (yaml.safe_load, lambda c: c.registration.allow_guest_access),
    "password_config.enabled": (yaml.safe_load, lambda c: c.registration.password_login_enabled),
    "password_config.localdb_enabled": (yaml.safe_load, lambda c: c.registration.password_localdb_enabled),
    "signing_key_path": (with_server_name, lambda c: c.key.signing_key_path),
    "enable_metrics": (yaml.safe_load, lambda c: c.metrics.enable_metrics),
    "turn_user_lifetime": (parse_duration_ms, lambda c: c.voip.turn_user_lifetime_ms),
    "turn_allow_guests": (yaml.safe_load, lambda c: c.voip.turn_allow_guests),
    "user_directory.enabled": (yaml.safe_load, lambda c: c.user_directory.enabled),
    "user_directory.search_all_users": (yaml.safe_load, lambda c: c.user_directory.search_all_users),
    "use_presence": (yaml.safe_load, lambda c: c.presence.enabled),
    "presence.enabled": (yaml.safe_load, lambda c: c.presence.enabled and c.presence.track),
    "presence.include_offline_users_on_sync": (yaml.safe_load, lambda c: c.presence.include_offline_users_on_sync),
    "presence.last_active_granularity": (parse_duration_ms, lambda c: c.presence.last_active_granularity_ms),
    "presence.sync_online_timeout": (parse_duration_ms, lambda c: c.presence.sync_online_timeout_ms),
    "presence.idle_timeout": (parse_duration_ms, lambda c: c.presence.idle_timeout_ms),
}


@pytest.mark.parametrize("path", list(DEFAULT_CASES))
def test_stated_default_is_the_loaded_default(minimal_config: HomeServerConfig, path: str) -> None:
    parse, actual = DEFAULT_CASES[path]
    assert parse(stated_default(path)) == actual(minimal_config), (path, description_of(path))


@pytest.mark.parametrize("key", list(DEFAULTS))
def test_stated_rate_limit_is_the_loaded_default(minimal_config: HomeServerConfig, key: str) -> None:
    description = description_of(key)
    match = re.search(r"[Dd]efault ([\d.]+) per second, burst ([\d.]+)", description)
    assert match, f"the description of {key} states no default: {description!r}"
    limit = minimal_config.ratelimiting.get(key)
    assert (float(match.group(1)), float(match.group(2))) == (limit.per_second, limit.burst_count), key


def test_stated_database_default(minimal_config: HomeServerConfig) -> None:
    assert "SQLite in `homeserver.db`" in description_of("database")
    assert minimal_config.database.engine == "sqlite3"
    assert minimal_config.database.args == {"database": "homeserver.db"}


# --- (c) the schemas use only what the validator checks ----------------------------------------


def test_schemas_use_only_keywords_the_validator_checks() -> None:
    """homeserver/config/validation.py implements a part of JSON Schema; a schema using any
    other keyword would be silently unchecked."""
    from homeserver.config.validation import unknown_keywords

    schema = combined_schema(HomeServerConfig(RawConfig()))
    assert unknown_keywords(schema) == []


@pytest.mark.parametrize(("value", "fragment"), [
    ({"listeners": [{"port": True, "type": "http"}]}, "True is not of type 'integer'"),
    ({"listeners": [{"port": 8008, "type": "http", "resources": [{"names": ["nope"]}]}]}, "'nope' is not one of"),
    ({"rc_login": {"failed_attempts": {"per_second": -1}}}, "-1 is less than the minimum of"),
    ({"presence": {"enabled": "sometimes"}}, "'sometimes' is not valid under any of the given schemas"),
    ({"redis": {"enabled": "yes"}}, "'yes' is not of type 'boolean'"),
])
def test_validator_reports_what_jsonschema_would(value: dict[str, Any], fragment: str) -> None:
    """The in-house validator finds the same mistakes a full JSON Schema validator does."""
    import jsonschema

    from homeserver.config.validation import first_error

    schema = combined_schema(HomeServerConfig(RawConfig()))
    ours = first_error(value, schema)
    assert ours is not None and fragment in ours.message, ours
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(value)), "jsonschema accepts it"
