"""The redaction algorithm of each room version.

`prune_event_dict` keeps only the top-level keys and content keys that a room version
protects; it is the input of reference hashes and signatures as well as what clients see
of a redacted event.
"""

import copy
from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion

# Top-level keys every room version keeps.
_KEPT_KEYS = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    }
)
# Top-level keys kept only before room version 11.
_KEPT_KEYS_BEFORE_V11 = _KEPT_KEYS | {"prev_state", "origin", "membership"}

_POWER_LEVEL_KEYS = (
    "ban",
    "events",
    "events_default",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
)


def _kept_content_keys(room_version: RoomVersion, event_type: str) -> tuple[str, ...]:
    """The content keys of `event_type` that survive redaction (not counting special cases)."""
    rv = room_version
    if event_type == "m.room.member":
        if rv.restricted_join_rule_fix:
            return ("membership", "join_authorised_via_users_server")
        return ("membership",)
    if event_type == "m.room.create":
        return ("creator",)
    if event_type == "m.room.join_rules":
        return ("join_rule", "allow") if rv.restricted_join_rule else ("join_rule",)
    if event_type == "m.room.power_levels":
        if rv.updated_redaction_rules:
            return _POWER_LEVEL_KEYS + ("invite",)
        return _POWER_LEVEL_KEYS
    if event_type == "m.room.history_visibility":
        return ("history_visibility",)
    if event_type == "m.room.aliases" and rv.special_case_aliases_auth:
        return ("aliases",)
    if event_type == "m.room.redaction" and rv.updated_redaction_rules:
        return ("redacts",)
    return ()


def _pruned_content(room_version: RoomVersion, event_type: str, content: Any) -> dict[str, Any]:
    if not isinstance(content, dict):
        return {}
    if event_type == "m.room.create" and room_version.updated_redaction_rules:
        return content
    pruned = {
        key: content[key] for key in _kept_content_keys(room_version, event_type) if key in content
    }
    if event_type == "m.room.member" and room_version.updated_redaction_rules:
        invite = content.get("third_party_invite")
        if isinstance(invite, dict) and "signed" in invite:
            pruned["third_party_invite"] = {"signed": invite["signed"]}
    return pruned


def pruned_view(room_version: RoomVersion, pdu: dict[str, Any]) -> dict[str, Any]:
    """What redaction keeps of `pdu`, sharing nested values with it: read, never modify.

    Hashing and signing use this to avoid copying the event.
    """
    kept = _KEPT_KEYS if room_version.updated_redaction_rules else _KEPT_KEYS_BEFORE_V11
    pruned = {key: value for key, value in pdu.items() if key in kept}
    event_type = pdu.get("type")
    pruned["content"] = _pruned_content(
        room_version, event_type if isinstance(event_type, str) else "", pdu.get("content")
    )
    return pruned


def prune_event_dict(room_version: RoomVersion, pdu: dict[str, Any]) -> dict[str, Any]:
    """A new dict holding what the redaction algorithm of `room_version` keeps of `pdu`.

    `unsigned` is not kept; callers that show redacted events add what they need to it.
    """
    return copy.deepcopy(pruned_view(room_version, pdu))


def prune_event(event: Event) -> Event:
    """The redacted form of `event`, with the same id and a copy of its `unsigned`.

    `rejected_reason` and `internal_metadata` are carried over as well.
    """
    pdu = prune_event_dict(event.room_version, event.get_pdu_json())
    pruned = Event(pdu, event.room_version, event_id=event.event_id)
    pruned.unsigned = copy.deepcopy(event.unsigned)
    pruned.rejected_reason = event.rejected_reason
    pruned.internal_metadata = dict(event.internal_metadata)
    return pruned
