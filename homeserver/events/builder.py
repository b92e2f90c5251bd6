"""Building, hashing and signing the events this server creates, and choosing which
state entries an event must cite as its auth events."""

import secrets
import string
import time
from typing import Any

from homeserver.events.event import Event
from homeserver.events.hashing import compute_content_hash
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import sign_pdu
from homeserver.events.validation import validate_event

_EVENT_ID_ALPHABET = string.ascii_letters + string.digits
_EVENT_ID_LENGTH = 18


def _random_event_id(server_name: str) -> str:
    opaque = "".join(secrets.choice(_EVENT_ID_ALPHABET) for _ in range(_EVENT_ID_LENGTH))
    return f"${opaque}:{server_name}"


def _references(room_version: RoomVersion, event_ids: list[str]) -> list[Any]:
    """`prev_events`/`auth_events` in the shape of the event format.

    Format 1 pairs each id with its reference hashes; we cite ids only and leave that
    object empty, as deployed servers do.
    """
    if room_version.event_format == 1:
        return [[event_id, {}] for event_id in event_ids]
    return list(event_ids)


def _base_pdu(room_version: RoomVersion, event_dict: dict[str, Any]) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": event_dict["type"],
        "room_id": event_dict["room_id"],
        "sender": event_dict["sender"],
        "content": dict(event_dict.get("content") or {}),
    }
    if event_dict.get("state_key") is not None:
        pdu["state_key"] = event_dict["state_key"]
    redacts = event_dict.get("redacts")
    if redacts is not None:
        if room_version.redacts_in_content:
            pdu["content"]["redacts"] = redacts
        else:
            pdu["redacts"] = redacts
    return pdu


def create_local_event(
    room_version: RoomVersion,
    event_dict: dict[str, Any],
    prev_event_ids: list[str],
    auth_event_ids: list[str],
    depth: int,
    server_name: str,
    signing_key: Any,
    origin_server_ts: int | None = None,
) -> Event:
    """Complete, hash, sign and validate an event of ours.

    `event_dict` holds `type`, `room_id`, `sender`, `content` and optionally `state_key`,
    `redacts` (placed in content from room version 11) and `unsigned`.
    Raises EventValidationError if the result is not a valid PDU.
    """
    pdu = _base_pdu(room_version, event_dict)
    pdu["prev_events"] = _references(room_version, prev_event_ids)
    pdu["auth_events"] = _references(room_version, auth_event_ids)
    pdu["depth"] = depth
    pdu["origin_server_ts"] = (
        int(time.time() * 1000) if origin_server_ts is None else origin_server_ts
    )
    if room_version.event_format == 1:
        pdu["event_id"] = _random_event_id(server_name)
    pdu["hashes"] = {"sha256": compute_content_hash(pdu)}
    pdu["signatures"] = {}
    sign_pdu(pdu, server_name, signing_key, room_version)
    event = Event(pdu, room_version)
    unsigned = event_dict.get("unsigned")
    if unsigned:
        event.unsigned.update(unsigned)
    validate_event(event)
    return event


def auth_types_for_event(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: dict[str, Any],
) -> list[tuple[str, str]]:
    """The (type, state_key) state entries an event of this shape cites as auth events."""
    if event_type == "m.room.create":
        return []
    wanted = [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", sender)]
    if event_type == "m.room.member" and state_key is not None:
        wanted.extend(_membership_auth_types(room_version, state_key, content))
    unique: list[tuple[str, str]] = []
    for key in wanted:
        if key not in unique:
            unique.append(key)
    return unique


def _membership_auth_types(
    room_version: RoomVersion, target: str, content: dict[str, Any]
) -> list[tuple[str, str]]:
    wanted = [("m.room.member", target)]
    membership = content.get("membership")
    if membership in ("join", "invite", "knock"):
        wanted.append(("m.room.join_rules", ""))
    if membership == "invite":
        invite = content.get("third_party_invite")
        signed = invite.get("signed") if isinstance(invite, dict) else None
        token = signed.get("token") if isinstance(signed, dict) else None
        if isinstance(token, str):
            wanted.append(("m.room.third_party_invite", token))
    if membership == "join" and room_version.restricted_join_rule:
        authoriser = content.get("join_authorised_via_users_server")
        if isinstance(authoriser, str):
            wanted.append(("m.room.member", authoriser))
    return wanted
