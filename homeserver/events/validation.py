"""Structural validation of a PDU before it is authorised or stored.

Checks sizes (whole event and identifiers), required keys and their JSON types, the shape
of `prev_events`/`auth_events` for the event format, and, for room versions that enforce
canonical JSON, that every number is an integer in the interoperable range.
"""

import math
from typing import Any

from canonicaljson import encode_canonical_json

from homeserver.events.errors import EventValidationError
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion

MAX_PDU_SIZE = 65536
MAX_ID_SIZE = 255
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10
CANONICAL_INT_MAX = 2**53 - 1
INT64_MAX = 2**63 - 1

_ID_KEYS = ("sender", "room_id", "type", "state_key")


def validate_event(event: Event) -> None:
    """Raise EventValidationError (with the errcode a client should get) if malformed."""
    pdu = _full_pdu(event)
    rv = event.room_version
    _check_required(pdu, rv)
    _check_numbers(pdu, rv)
    _check_sizes(event, pdu)
    _check_identifiers(event, rv)
    _check_references(pdu, rv)
    _check_type_specific(event)


def _full_pdu(event: Event) -> dict[str, Any]:
    """The PDU as sent over federation (`event_id` only in format 1), which is what the
    size limit applies to."""
    return event.get_pdu_json()


def _bad(msg: str, errcode: str = "M_BAD_JSON") -> EventValidationError:
    return EventValidationError(errcode, msg)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_required(pdu: dict[str, Any], rv: RoomVersion) -> None:
    for key in ("type", "room_id", "sender"):
        if not isinstance(pdu.get(key), str):
            raise _bad(f"'{key}' must be a string")
    if not isinstance(pdu.get("content"), dict):
        raise _bad("'content' must be an object")
    for key in ("depth", "origin_server_ts"):
        if not _is_int(pdu.get(key)):
            raise _bad(f"'{key}' must be an integer")
    for key in ("prev_events", "auth_events"):
        if not isinstance(pdu.get(key), list):
            raise _bad(f"'{key}' must be an array")
    for key in ("hashes", "signatures"):
        if not isinstance(pdu.get(key), dict):
            raise _bad(f"'{key}' must be an object")
    if "state_key" in pdu and not isinstance(pdu["state_key"], str):
        raise _bad("'state_key' must be a string")
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise _bad("'unsigned' must be an object")


def _check_numbers(pdu: dict[str, Any], rv: RoomVersion) -> None:
    limit = CANONICAL_INT_MAX if rv.strict_canonicaljson else INT64_MAX
    if not 0 <= pdu["depth"] <= limit:
        raise _bad(f"'depth' must be between 0 and {limit}")
    if not -limit <= pdu["origin_server_ts"] <= limit:
        raise _bad("'origin_server_ts' is out of range")
    _walk_numbers(pdu, rv.strict_canonicaljson)


def _walk_numbers(value: Any, strict: bool) -> None:
    """Reject non-finite floats always; with `strict`, any float or out-of-range integer."""
    if isinstance(value, dict):
        for item in value.values():
            _walk_numbers(item, strict)
    elif isinstance(value, list):
        for item in value:
            _walk_numbers(item, strict)
    elif isinstance(value, float):
        if strict:
            raise _bad("floats are not allowed in this room version")
        if not math.isfinite(value):
            raise _bad("non-finite numbers are not allowed")
    elif strict and _is_int(value) and not -CANONICAL_INT_MAX <= value <= CANONICAL_INT_MAX:
        raise _bad("integer out of the canonical JSON range")


def _check_sizes(event: Event, pdu: dict[str, Any]) -> None:
    try:
        size = len(encode_canonical_json(pdu))
    except (TypeError, ValueError) as e:
        raise _bad(f"event is not valid JSON: {e}") from e
    if size > MAX_PDU_SIZE:
        raise _bad(f"event is larger than {MAX_PDU_SIZE} bytes", "M_TOO_LARGE")
    for key in _ID_KEYS:
        value = pdu.get(key)
        if isinstance(value, str) and len(value.encode("utf-8")) > MAX_ID_SIZE:
            raise _bad(f"'{key}' is longer than {MAX_ID_SIZE} bytes", "M_TOO_LARGE")
    if len(event.event_id.encode("utf-8")) > MAX_ID_SIZE:
        raise _bad(f"'event_id' is longer than {MAX_ID_SIZE} bytes", "M_TOO_LARGE")


def _domain(identifier: str, sigil: str) -> str | None:
    """The domain of `sigil`localpart:domain, or None if it does not have that shape."""
    if not identifier.startswith(sigil):
        return None
    localpart, sep, domain = identifier[1:].partition(":")
    return domain if sep and domain else None


def _check_identifiers(event: Event, rv: RoomVersion) -> None:
    if _domain(event.sender, "@") is None:
        raise _bad(f"sender {event.sender!r} is not a user id", "M_INVALID_PARAM")
    if _domain(event.room_id, "!") is None:
        raise _bad(f"room_id {event.room_id!r} is not a room id", "M_INVALID_PARAM")
    if rv.event_id_has_domain and _domain(event.event_id, "$") is None:
        raise _bad(f"event_id {event.event_id!r} is not an event id", "M_INVALID_PARAM")


def _check_references(pdu: dict[str, Any], rv: RoomVersion) -> None:
    for key, limit in (("prev_events", MAX_PREV_EVENTS), ("auth_events", MAX_AUTH_EVENTS)):
        refs = pdu[key]
        if len(refs) > limit:
            raise _bad(f"'{key}' has more than {limit} entries")
        for ref in refs:
            if rv.event_format == 1:
                ok = (
                    isinstance(ref, list)
                    and len(ref) == 2
                    and isinstance(ref[0], str)
                    and isinstance(ref[1], dict)
                )
            else:
                ok = isinstance(ref, str) and ref.startswith("$")
            if not ok:
                raise _bad(f"malformed entry in '{key}': {ref!r}")


def _check_type_specific(event: Event) -> None:
    if event.type == "m.room.member":
        if not event.is_state():
            raise _bad("m.room.member events need a state_key")
        if not isinstance(event.content.get("membership"), str):
            raise _bad("m.room.member content needs a string 'membership'")
    if event.type in ("m.room.create", "m.room.power_levels", "m.room.join_rules"):
        if not event.is_state():
            raise _bad(f"{event.type} events must be state events")
    if event.type == "m.room.redaction" and event.redacts is None:
        raise _bad("m.room.redaction events need the id of the event they redact")
