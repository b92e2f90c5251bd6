"""Checking a config file against its sections' schemas.

The schemas (one per section, in each section's module) use a small part of JSON Schema:
`type` (one name or a list), `properties`, `additionalProperties` (a schema or false),
`items`, `required`, `enum`, `const`, `anyOf`, `minimum`, `maximum`, `minLength`, `pattern`,
plus `description` and `default`, which only the reference (`reference.py`) reads. This module
checks exactly that part, which keeps a general JSON Schema library (and the 2-3 MB it takes
in every process) out of the server; `tests/test_config_reference.py` checks that no schema
uses anything else."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# What this module understands; anything else in a schema is a mistake in the schema.
KEYWORDS = frozenset({
    "type", "properties", "additionalProperties", "items", "required", "enum", "const", "anyOf",
    "minimum", "maximum", "minLength", "pattern", "description", "default",
})

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


@dataclass
class SchemaError:
    """One way the value at `path` breaks the schema: `keyword` says which rule, `message`
    says it in words."""

    path: list[str | int]
    keyword: str
    message: str
    rule: Any = None
    value: Any = None


def first_error(value: Any, schema: dict[str, Any]) -> SchemaError | None:
    """The first problem found, in the order of the value's keys; None when it conforms."""
    return next(iter_errors(value, schema), None)


def iter_errors(value: Any, schema: dict[str, Any], path: list[str | int] | None = None) -> Iterator[SchemaError]:
    """Every problem with `value` (depth first; a value of the wrong type is reported once,
    without the rules that apply only to the right type)."""
    path = path or []
    if "type" in schema and not _has_type(value, schema["type"]):
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        yield SchemaError(path, "type", f"{value!r} is not of type {', '.join(repr(n) for n in names)}")
        return
    if "const" in schema and value != schema["const"]:
        yield SchemaError(path, "const", f"{schema['const']!r} was expected")
    if "enum" in schema and value not in schema["enum"]:
        yield SchemaError(path, "enum", f"{value!r} is not one of {schema['enum']!r}", schema["enum"], value)
    if "anyOf" in schema and not any(first_error(value, option) is None for option in schema["anyOf"]):
        yield SchemaError(path, "anyOf", f"{value!r} is not valid under any of the given schemas", schema["anyOf"])
    yield from _number_errors(value, schema, path)
    yield from _string_errors(value, schema, path)
    if isinstance(value, dict):
        yield from _object_errors(value, schema, path)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from iter_errors(item, schema["items"], [*path, index])


def _has_type(value: Any, names: str | list[str]) -> bool:
    return any(_TYPES[name](value) for name in ([names] if isinstance(names, str) else names))


def _number_errors(value: Any, schema: dict[str, Any], path: list[str | int]) -> Iterator[SchemaError]:
    if not _TYPES["number"](value):
        return
    if "minimum" in schema and value < schema["minimum"]:
        yield SchemaError(path, "minimum", f"{value!r} is less than the minimum of {schema['minimum']!r}")
    if "maximum" in schema and value > schema["maximum"]:
        yield SchemaError(path, "maximum", f"{value!r} is greater than the maximum of {schema['maximum']!r}")


def _string_errors(value: Any, schema: dict[str, Any], path: list[str | int]) -> Iterator[SchemaError]:
    if not isinstance(value, str):
        return
    if "minLength" in schema and len(value) < schema["minLength"]:
        shortness = "should be non-empty" if schema["minLength"] == 1 else "is too short"
        yield SchemaError(path, "minLength", f"{value!r} {shortness}")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        yield SchemaError(path, "pattern", f"{value!r} does not match {schema['pattern']!r}")


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: list[str | int]) -> Iterator[SchemaError]:
    for name in schema.get("required", []):
        if name not in value:
            yield SchemaError(path, "required", f"{name!r} is a required property", name)
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            yield from iter_errors(item, properties[key], [*path, key])
        elif extra is False:
            yield SchemaError(path, "additionalProperties", f"Additional properties are not allowed ({key!r} was unexpected)")
        elif isinstance(extra, dict):
            yield from iter_errors(item, extra, [*path, key])


def unknown_keywords(schema: Any, path: str = "") -> list[str]:
    """Keywords in `schema` (and every schema inside it) that this module does not check."""
    if not isinstance(schema, dict):
        return []
    found = [f"{path or '/'}: {key}" for key in schema if key not in KEYWORDS]
    for key in ("items", "additionalProperties"):
        found += unknown_keywords(schema.get(key), f"{path}/{key}")
    for name, sub in schema.get("properties", {}).items():
        found += unknown_keywords(sub, f"{path}/properties/{name}")
    for index, sub in enumerate(schema.get("anyOf", [])):
        found += unknown_keywords(sub, f"{path}/anyOf/{index}")
    return found
