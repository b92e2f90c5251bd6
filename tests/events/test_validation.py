"""validate_event: sizes, required keys and types, canonical JSON per room version."""

from typing import Any

import pytest
from signedjson.key import generate_signing_key

from homeserver.events.builder import create_local_event
from homeserver.events.errors import EventValidationError
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.events.validation import validate_event

KEY = generate_signing_key("k")


def _build(version: str = "10", content: Any = None, **fields: Any) -> Event:
    event_dict = {"type": "m.room.message", "room_id": "!r:test", "sender": "@u:test",
                  "content": {"body": "hi"} if content is None else content, **fields}
    return create_local_event(KNOWN_ROOM_VERSIONS[version], event_dict, ["$p"] if version != "1"
                              else ["$p:test"], [], 3, "test", KEY, origin_server_ts=1000)


def _raw(version: str = "10", **changes: Any) -> Event:
    """A valid event's PDU with `changes` applied (None deletes), not re-signed."""
    pdu = _build(version).get_pdu_json()
    for key, value in changes.items():
        if value is None:
            pdu.pop(key, None)
        else:
            pdu[key] = value
    return Event(pdu, KNOWN_ROOM_VERSIONS[version])


def _errcode(event_or_call: Any) -> str:
    with pytest.raises(EventValidationError) as info:
        event_or_call() if callable(event_or_call) else validate_event(event_or_call)
    return info.value.errcode


def test_valid_events_pass() -> None:
    for version in KNOWN_ROOM_VERSIONS:
        validate_event(_build(version))


def test_too_large() -> None:
    assert _errcode(lambda: _build(content={"body": "x" * 65 * 1024})) == "M_TOO_LARGE"
    validate_event(_build(content={"body": "x" * 60 * 1024}))


@pytest.mark.parametrize("field", ["state_key", "type"])
def test_long_identifiers(field: str) -> None:
    fields: dict[str, Any] = {"state_key": "", field: "a" * 256}
    assert _errcode(lambda: _build(**fields)) == "M_TOO_LARGE"
    fields[field] = "a" * 255
    validate_event(_build(**fields))


def test_long_sender_and_room_id() -> None:
    long_user = "@" + "u" * 250 + ":test"
    assert _errcode(lambda: _build(sender=long_user)) == "M_TOO_LARGE"
    assert _errcode(lambda: _build(room_id="!" + "r" * 250 + ":test")) == "M_TOO_LARGE"
    assert _errcode(_raw("1", event_id="$" + "e" * 260 + ":test")) == "M_TOO_LARGE"


def test_multibyte_state_key_counts_bytes() -> None:
    assert _errcode(lambda: _build(state_key="é" * 128)) == "M_TOO_LARGE"


@pytest.mark.parametrize("version", ["6", "10", "11"])
def test_floats_and_big_ints_rejected_in_strict_versions(version: str) -> None:
    assert _errcode(lambda: _build(version, content={"n": 1.5})) == "M_BAD_JSON"
    assert _errcode(lambda: _build(version, content={"a": [{"n": 2**53}]})) == "M_BAD_JSON"
    assert _errcode(lambda: _build(version, content={"n": -(2**53)})) == "M_BAD_JSON"
    validate_event(_build(version, content={"n": 2**53 - 1, "m": -(2**53) + 1}))


@pytest.mark.parametrize("version", ["1", "5"])
def test_floats_allowed_before_v6(version: str) -> None:
    validate_event(_build(version, content={"n": 1.5, "big": 2**60}))


def test_non_object_content() -> None:
    assert _errcode(_raw(content=["not", "an", "object"])) == "M_BAD_JSON"
    assert _errcode(_raw(content="text")) == "M_BAD_JSON"


@pytest.mark.parametrize(
    "changes",
    [
        {"type": None}, {"type": 5}, {"room_id": None}, {"depth": "3"}, {"depth": -1},
        {"depth": 2**53}, {"origin_server_ts": 1.0}, {"origin_server_ts": True},
        {"prev_events": "$p"}, {"auth_events": None}, {"hashes": None},
        {"signatures": []}, {"state_key": 3}, {"prev_events": ["$p"] * 21},
        {"auth_events": ["$a"] * 11}, {"prev_events": [["$p", {}]]},
    ],
)
def test_malformed_pdus(changes: dict[str, Any]) -> None:
    assert _errcode(_raw(**changes)) == "M_BAD_JSON"


def test_v1_reference_shape() -> None:
    assert _errcode(_raw("1", prev_events=["$p:test"])) == "M_BAD_JSON"
    assert _errcode(_raw("1", auth_events=[["$a:test"]])) == "M_BAD_JSON"


@pytest.mark.parametrize(
    "changes", [{"sender": "alice"}, {"sender": "@alice"}, {"sender": "@alice:"},
                {"room_id": "room:test"}, {"room_id": "!room"}],
)
def test_bad_identifiers(changes: dict[str, Any]) -> None:
    assert _errcode(_raw(**changes)) == "M_INVALID_PARAM"


def test_v1_event_id_needs_domain() -> None:
    assert _errcode(_raw("1", event_id="$nodomain")) == "M_INVALID_PARAM"


def test_type_specific() -> None:
    assert _errcode(lambda: _build(type="m.room.member", content={"membership": "join"})) \
        == "M_BAD_JSON"
    assert _errcode(lambda: _build(type="m.room.member", state_key="@u:test", content={})) \
        == "M_BAD_JSON"
    assert _errcode(lambda: _build(type="m.room.redaction", content={})) == "M_BAD_JSON"
    validate_event(_build(type="m.room.redaction", content={}, redacts="$x"))
    assert _build("11", type="m.room.redaction", content={}, redacts="$x").content == {
        "redacts": "$x"}
