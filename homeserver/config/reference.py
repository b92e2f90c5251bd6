"""The configuration reference, generated from the sections' jsonschemas.

    python -m homeserver.config.reference > docs/config_reference.md

writes one Markdown section per config section (in `HomeServerConfig.sections()` order) with a
table of every key, nested keys included (`parent.child`, `list[].child`, `map.<name>.child`):
its type, read from the schema, and the schema's `description`. A last section lists the Synapse
keys that are accepted but not supported yet (`UNSUPPORTED_SYNAPSE_KEYS`). The output depends
only on the schemas, so it is the same on every run.
"""

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from homeserver.config._base import RawConfig, Section
from homeserver.config.homeserver import UNSUPPORTED_SYNAPSE_KEYS, HomeServerConfig

COMMAND = "python -m homeserver.config.reference > docs/config_reference.md"

# Section class name -> (heading, introduction).
SECTION_INFO: dict[str, tuple[str, str]] = {
    "ServerConfig": (
        "Server",
        "The server's name, the URL clients use, the listeners of the main process and other "
        "settings of the whole server.",
    ),
    "DatabaseConfig": (
        "Database",
        "The database every process shares. SQLite suits a single process; a deployment with "
        "workers needs PostgreSQL. Only the main process updates the database schema.",
    ),
    "RedisConfig": (
        "Redis",
        "Processes tell each other about their writes through Redis, so it is required once "
        "there are workers.",
    ),
    "WorkerConfig": (
        "Workers",
        "Which process this is, where the others can be reached and which process writes each "
        "stream. The `worker_*` keys belong in each worker's own file; the others in the shared "
        "file. `main` and `master` both name the main process. See `docs/workers.md`.",
    ),
    "RegistrationConfig": (
        "Registration and passwords",
        "Who may create accounts, and how passwords are checked and stored.",
    ),
    "RatelimitConfig": (
        "Rate limits",
        "Each `rc_*` limit is a token bucket with a `per_second` rate and a `burst_count`, kept "
        "separately by each process. A request over the limit gets 429 `M_LIMIT_EXCEEDED` with "
        "`retry_after_ms`. A part left out of a limit keeps its default.",
    ),
    "LoggingConfig": ("Logging", "Where log lines go."),
    "KeyConfig": (
        "Signing keys and secrets",
        "The server's signing key and the secrets `--generate-config` writes.",
    ),
    "MetricsConfig": (
        "Metrics",
        "Prometheus metrics are served at `/_synapse/metrics` by listeners with the `metrics` "
        "resource.",
    ),
    "VoipConfig": (
        "VoIP (TURN)",
        "The TURN server details that `/voip/turnServer` hands to clients for calls.",
    ),
    "UserDirectoryConfig": ("User directory", "Searching for other users."),
    "PresenceConfig": ("Presence", "Online status. See `docs/ephemeral.md`."),
}

UNSUPPORTED_HEADING = "Synapse keys accepted but not supported yet"

_TYPE_WORDS = {
    "object": "mapping", "array": "list", "string": "string", "integer": "integer",
    "number": "number", "boolean": "boolean", "null": "null",
}
_PLURALS = {
    "mapping": "mappings", "list": "lists", "string": "strings", "integer": "integers",
    "number": "numbers", "boolean": "booleans",
}


def _code(text: str) -> str:
    return f"`{text}`"


def _literal(value: Any) -> str:
    return _code(value if isinstance(value, str) else json.dumps(value))


def _number(value: Any) -> str:
    return str(value)


def _is_constraint_only(option: dict[str, Any]) -> bool:
    """An `anyOf` branch such as `{"required": ["port"]}` that says nothing about the type."""
    return set(option) <= {"required"}


def render_type(schema: dict[str, Any]) -> str:
    """A readable type: `integer, 0 to 65535`, `one of `a`, `b``, `list of strings`, ..."""
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        base = "one of " + ", ".join(_literal(v) for v in schema["enum"])
    elif "anyOf" in schema and not all(_is_constraint_only(o) for o in schema["anyOf"]):
        base = " or ".join(render_type(o) for o in schema["anyOf"] if not _is_constraint_only(o))
    elif "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        base = " or ".join(_render_simple(t, schema) for t in types)
    else:
        base = "any"
    return ", ".join([base, *_constraints(schema)])


def _render_simple(type_name: str, schema: dict[str, Any]) -> str:
    word = _TYPE_WORDS.get(type_name, type_name)
    if type_name == "array" and isinstance(schema.get("items"), dict):
        item = render_type(schema["items"])
        if item in _PLURALS:
            return f"list of {_PLURALS[item]}"
        if item.startswith("one of "):
            return f"list, each {item}"
        return f"list of ({item})"
    if type_name == "object" and isinstance(schema.get("additionalProperties"), dict):
        value = render_type(schema["additionalProperties"])
        return f"mapping of names to {_PLURALS.get(value, f'({value})')}"
    return word


def _constraints(schema: dict[str, Any]) -> list[str]:
    out = []
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        out.append(f"{_number(low)} to {_number(high)}")
    elif low is not None:
        out.append(f"at least {_number(low)}")
    elif high is not None:
        out.append(f"at most {_number(high)}")
    min_length = schema.get("minLength")
    if min_length == 1:
        out.append("non-empty")
    elif min_length:
        out.append(f"at least {min_length} characters")
    if "pattern" in schema:
        out.append(f"matching {_code(schema['pattern'])}")
    return out


def rows(
    key: str, schema: dict[str, Any], seen: dict[int, str], required: bool = False
) -> Iterator[tuple[str, str, str]]:
    """(key path, type, description) for `key` and every key nested in it. `seen` maps the
    nested keys (`properties`) already listed to where: a schema shared by several keys (the
    listeners, the rate limits) lists its nested keys once and then refers to them."""
    type_text = render_type(schema) + (", required" if required else "")
    items = schema.get("items")
    target, suffix = (items, "[]") if isinstance(items, dict) else (schema, "")
    properties = target.get("properties")
    if isinstance(properties, dict) and id(properties) in seen:
        what = "items" if suffix else "keys"
        yield key, f"{type_text}; {what} as in {_code(seen[id(properties)])}", schema.get("description", "")
        return
    if isinstance(properties, dict):
        seen[id(properties)] = key + suffix
    yield key, type_text, schema.get("description", "")
    yield from _nested_rows(key, schema, seen)


def _nested_rows(key: str, schema: dict[str, Any], seen: dict[int, str]) -> Iterator[tuple[str, str, str]]:
    properties = schema.get("properties")
    if isinstance(properties, dict):
        needed = set(schema.get("required", []))
        for name, child in properties.items():
            yield from rows(f"{key}.{name}", child, seen, name in needed)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _nested_rows(f"{key}[]", items, seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and ("properties" in extra or "description" in extra):
        yield from rows(f"{key}.<name>", extra, seen)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def _section_info(section: Section) -> tuple[str, str]:
    name = type(section).__name__
    if name in SECTION_INFO:
        return SECTION_INFO[name]
    doc = (sys.modules[type(section).__module__].__doc__ or "").strip().split("\n\n")[0]
    return name.removesuffix("Config"), " ".join(doc.split())


def render_section(section: Section, seen: dict[int, str]) -> list[str]:
    heading, intro = _section_info(section)
    lines = [f"## {heading}", ""]
    if intro:
        lines += [intro, ""]
    lines += ["| Key | Type | Description |", "| --- | --- | --- |"]
    for key, schema in section.SCHEMA.items():
        for path, type_text, description in rows(key, schema, seen):
            lines.append(f"| {_cell(_code(path))} | {_cell(type_text)} | {_cell(description)} |")
    return lines + [""]


def render() -> str:
    """The whole reference, as Markdown."""
    sections = HomeServerConfig(RawConfig()).sections()
    headings = [_section_info(s)[0] for s in sections] + [UNSUPPORTED_HEADING]
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from the config schemas in homeserver/config/; do not edit by hand. -->",
        "",
        "Generated from the schemas in `homeserver/config/`; do not edit this file. After changing "
        f"a schema, regenerate it with `{COMMAND}`. For an introduction and examples see "
        "[configuration.md](configuration.md).",
        "",
        "Every key is optional unless its description says otherwise. Nested keys are written "
        "`parent.child`; `list[].child` is a key of each item of a list and `map.<name>.child` "
        "a key of each value of a mapping. Sizes are bytes or a number with `K`, `M` or `G`; "
        "durations are milliseconds or a number with `ms`, `s`, `m`, `h`, `d`, `w` or `y`.",
        "",
        *[f"- [{h}](#{_anchor(h)})" for h in headings],
        "",
    ]
    seen: dict[int, str] = {}
    for section in sections:
        lines += render_section(section, seen)
    lines += [
        f"## {UNSUPPORTED_HEADING}",
        "",
        "These Synapse keys are recognised so that a Synapse config still loads: the process "
        "starts, logs a warning for each one it finds and otherwise ignores it. Any other "
        "unknown key is logged as `unknown config key, ignored`.",
        "",
        *[f"- {_code(key)}" for key in sorted(UNSUPPORTED_SYNAPSE_KEYS)],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
