"""Hypothesis strategies for the requests of one spec operation: path parameters (real ids of
the fuzzing user's world and generated strings), query parameters and JSON bodies (from the
operation's schemas with hypothesis-jsonschema, and now and then any JSON at all)."""

import copy
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.fuzz.spec_operations import Operation, Parameter

# Query parameters that make the server wait (long polling): kept short so a request returns.
WAIT_PARAMETERS = {"timeout"}


@dataclass
class World:
    """Real things the fuzzing user owns or can see, for path parameters and bodies that would
    otherwise only ever name things that do not exist."""

    server_name: str
    user_id: str
    access_token: str
    device_id: str
    password: str
    room_id: str
    event_id: str
    state_event_id: str
    other_user_id: str = ""
    other_room_id: str = ""
    alias: str = ""
    filter_id: str = ""
    backup_version: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)

    def real_values(self, name: str) -> list[str]:
        """Real values for the path or query parameter `name` (empty when there are none)."""
        users = [u for u in (self.user_id, self.other_user_id) if u]
        rooms = [r for r in (self.room_id, self.other_room_id) if r]
        values: dict[str, list[str]] = {
            "roomId": rooms,
            "roomIdOrAlias": [*rooms, self.alias],
            "roomAlias": [self.alias, f"#fuzz-new:{self.server_name}"],
            "userId": users,
            "eventId": [self.event_id, self.state_event_id],
            "deviceId": [self.device_id],
            "filterId": [self.filter_id],
            "version": [self.backup_version],
            "eventType": ["m.room.message", "m.room.name", "m.room.topic", "m.room.member",
                          "m.room.power_levels", "m.room.join_rules", "m.reaction", "org.example.fuzz"],
            "stateKey": ["", self.user_id],
            "type": ["m.fully_read", "m.direct", "m.push_rules", "org.example.fuzz"],
            "receiptType": ["m.read", "m.read.private", "m.fully_read"],
            "kind": ["override", "underride", "sender", "room", "content"],
            "ruleId": [".m.rule.master", ".m.rule.message", "fuzz.rule", self.room_id, self.user_id],
            "relType": ["m.annotation", "m.thread", "m.reference", "m.replace"],
            "tag": ["m.favourite", "u.fuzz"],
            "sessionId": ["fuzz-session"],
            "keyName": ["displayname", "avatar_url"],
            # Query parameters.
            "room_id": rooms,
            "filter": [self.filter_id],
        }
        return [v for v in values.get(name, []) + self.extra.get(name, []) if v is not None]


def _without_formats(schema: Any) -> Any:
    """`schema` without `format` keywords: the spec's are Matrix-specific (mx-user-id, ...),
    which hypothesis-jsonschema does not know; the patterns beside them still apply."""
    if isinstance(schema, list):
        return [_without_formats(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: _without_formats(v) for k, v in schema.items() if not (k == "format" and isinstance(v, str))}


# Strings that JSON and URLs can carry but the server's layers below may not: a lone UTF-16
# surrogate (valid JSON escape, not encodable as UTF-8), NUL (PostgreSQL text refuses it),
# right-to-left override, an astral character, a long string.
TRICKY_STRINGS = ["\ud800", "a\u0000b", "\u202e", "\U0001f600", "x" * 5000, ""]
# Query values past what a number parameter takes: beyond BIGINT, negative, not an integer.
TRICKY_NUMBERS = ["9" * 20, "-" + "9" * 20, "-1", "1e3", "0x10"]


def _string_slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to the string leaves and object keys of a JSON value (a key's path ends in None)."""
    if isinstance(value, str):
        return [path]
    slots: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            slots.append((*path, key, None))
            slots.extend(_string_slots(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            slots.extend(_string_slots(item, (*path, index)))
    return slots


def _replace(value: Any, slot: tuple[Any, ...], text: str) -> Any:
    """`value` with the string (or, for a slot ending in None, the key) at `slot` set to `text`."""
    if not slot:
        return text
    head, rest = slot[0], slot[1:]
    if isinstance(value, dict):
        if rest == (None,):
            return {(text if k == head else k): v for k, v in value.items()}
        return {k: (_replace(v, rest, text) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, text) if i == head else v) for i, v in enumerate(value)]


def with_tricky_string(value: Any) -> st.SearchStrategy[Any]:
    """`value`, or (half the time) `value` with one string or key made a tricky one."""
    slots = _string_slots(value)
    if not slots:
        return st.just(value)
    tricky = st.tuples(st.sampled_from(slots), st.sampled_from(TRICKY_STRINGS)).map(
        lambda pick: _replace(value, pick[0], pick[1]))
    return st.one_of(st.just(value), tricky)


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value, small."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=10,
    )


def _schema_key(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


@functools.lru_cache(maxsize=512)
def _strategy_for_key(key: str) -> st.SearchStrategy[Any]:
    schema = json.loads(key)
    try:
        strategy = from_schema(schema)
        strategy.validate()
        return strategy
    except Exception:  # a schema hypothesis-jsonschema cannot generate from: any JSON instead
        return json_values()


def from_spec_schema(schema: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Values valid against a spec schema (any JSON when the spec gives none)."""
    if not schema:
        return json_values()
    return _strategy_for_key(_schema_key(_without_formats(copy.deepcopy(schema))))


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def path_value(parameter: Parameter, world: World) -> st.SearchStrategy[str]:
    """Mostly a real value (three in four draws, where there is one), else a generated one."""
    generated = from_spec_schema(parameter.schema).map(_as_text) | st.text() | st.sampled_from(TRICKY_STRINGS)
    real = world.real_values(parameter.name)
    if not real:
        return generated
    real_strategy = st.sampled_from(real)
    return st.one_of(real_strategy, real_strategy, real_strategy, generated)


def query_values(parameters: list[Parameter], world: World) -> st.SearchStrategy[dict[str, Any]]:
    """Required parameters always, each optional one half the time."""

    def value(parameter: Parameter) -> st.SearchStrategy[Any]:
        if parameter.name in WAIT_PARAMETERS:
            return st.integers(min_value=0, max_value=50)
        base = from_spec_schema(parameter.schema) | st.sampled_from(TRICKY_STRINGS + TRICKY_NUMBERS)
        real = world.real_values(parameter.name)
        if real:
            base = st.one_of(base, st.sampled_from(real))
        return base.map(lambda v: [_as_text(x) for x in v] if isinstance(v, list) else _as_text(v))

    # A wait parameter is always sent: without one the server may wait for its default.
    always = [p for p in parameters if p.required or p.name in WAIT_PARAMETERS]
    return st.fixed_dictionaries(
        {p.name: value(p) for p in always},
        optional={p.name: value(p) for p in parameters if p not in always},
    )


def body_value(operation: Operation, world: World,
               adjust: Callable[[Any, World], st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[Any]:
    """The JSON body: valid against the operation's schema four times in five, else any JSON
    (the server must answer a wrong body with a Matrix error, never a 500). `adjust` may put
    real ids into a generated body. An operation without a body sends none."""
    if operation.body_schema is None:
        return st.none()
    valid = from_spec_schema(operation.body_schema)
    if adjust is not None:
        valid = valid.flatmap(lambda body: adjust(body, world))
    return st.one_of(valid, valid, valid, valid, json_values()).flatmap(with_tricky_string)
