"""The authorization rules of room versions 1 to 11.

`check_auth` decides whether an event is allowed given a set of state events (its auth
events, the state before it, or the current state) and raises AuthError with the reason
when it is not. Only entries that the auth events selection would pick are consulted, so
callers may pass a larger state map.
"""

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.events.builder import auth_types_for_event
from homeserver.events.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

AuthEvents = Mapping[tuple[str, str], Event]

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
THIRD_PARTY_INVITE = "m.room.third_party_invite"
ALIASES = "m.room.aliases"
REDACTION = "m.room.redaction"

AUTHORISING_USER = "join_authorised_via_users_server"
_LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick",
               "invite")
_LEVEL_DEFAULTS = {"ban": 50, "kick": 50, "redact": 50, "invite": 0}
_STRING_INT = re.compile(r"^\s*[+-]?[0-9]+\s*$")


# ---------------------------------------------------------------------------------------
# Small helpers


def _domain(identifier: str) -> str:
    """The part after the first colon of a user, room or v1 event id."""
    return identifier.split(":", 1)[1] if ":" in identifier else ""


def _is_user_id(value: Any) -> bool:
    return (
        isinstance(value, str) and value.startswith("@") and ":" in value
        and len(value) > 3 and len(value.encode("utf-8")) <= 255
    )


def _parse_level(value: Any, strict_int: bool) -> int | None:
    """A power level as int, or None when it is not one (strings and floats only when
    the room version tolerates them)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if strict_int:
        return None
    if isinstance(value, str) and _STRING_INT.match(value):
        return int(value.strip())
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def _lenient_level(value: Any, default: int) -> int:
    parsed = _parse_level(value, strict_int=False)
    return default if parsed is None else parsed


def _pl_content(auth_events: AuthEvents) -> dict[str, Any] | None:
    event = auth_events.get((POWER_LEVELS, ""))
    return event.content if event is not None else None


def _membership_of(user_id: str, auth_events: AuthEvents) -> str:
    """The user's membership in `auth_events`, "leave" when they have no member event."""
    event = auth_events.get((MEMBER, user_id))
    membership = event.membership if event is not None else None
    return membership or "leave"


def _creator(create: Event) -> str | None:
    if create.room_version.implicit_room_creator:
        return create.sender
    creator = create.content.get("creator")
    return creator if isinstance(creator, str) else None


# ---------------------------------------------------------------------------------------
# Power levels


def get_user_power_level(user_id: str, auth_events: AuthEvents) -> int:
    """The user's power level given the power levels (or, lacking them, create) event."""
    content = _pl_content(auth_events)
    if content is not None:
        users = content.get("users")
        if isinstance(users, dict) and user_id in users:
            return _lenient_level(users[user_id], 0)
        return _lenient_level(content.get("users_default"), 0)
    create = auth_events.get((CREATE, ""))
    if create is not None and _creator(create) == user_id:
        return 100
    return 0


def get_send_level(
    event_type: str, state_key: str | None, power_levels_content: Mapping[str, Any] | None
) -> int:
    """The level needed to send an event of this type (state when state_key is not None)."""
    content = power_levels_content or {}
    events = content.get("events")
    if isinstance(events, dict) and event_type in events:
        return _lenient_level(events[event_type], 0)
    if state_key is not None:
        return _lenient_level(content.get("state_default"), 50)
    return _lenient_level(content.get("events_default"), 0)


def _named_level(name: str, auth_events: AuthEvents) -> int:
    """The invite, kick, ban or redact level."""
    content = _pl_content(auth_events) or {}
    return _lenient_level(content.get(name), _LEVEL_DEFAULTS[name])


# ---------------------------------------------------------------------------------------
# Entry point


def check_auth(room_version: RoomVersion, event: Event, auth_events: AuthEvents) -> None:
    """Raise AuthError unless `event` is allowed by the rules of `room_version`."""
    if event.type == CREATE:
        _check_create(room_version, event)
        return
    create = _check_auth_entries(room_version, event, auth_events)
    _check_federate(event, create)
    if event.type == ALIASES and room_version.special_case_aliases_auth:
        _check_aliases(event)
        return
    if event.type == MEMBER:
        _check_membership(room_version, event, auth_events, create)
        return
    _check_sender_joined(event, auth_events)
    sender_level = get_user_power_level(event.sender, auth_events)
    if event.type == THIRD_PARTY_INVITE:
        _require(sender_level >= _named_level("invite", auth_events),
                 "sender's power level is below the invite level")
        return
    required = get_send_level(event.type, event.state_key, _pl_content(auth_events))
    _require(sender_level >= required,
             f"sending {event.type} needs power level {required}, sender has {sender_level}")
    if event.state_key is not None and event.state_key.startswith("@"):
        _require(event.state_key == event.sender,
                 "a state_key that is a user id must be the sender's")
    if event.type == POWER_LEVELS:
        _check_power_levels(room_version, event, auth_events, sender_level)
    elif event.type == REDACTION and room_version.redaction_rule_in_auth:
        _check_redaction_v1(event, auth_events, sender_level)


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise AuthError(reason)


def check_auth_events_selection(
    room_version: RoomVersion, event: Event, cited: Iterable[Event]
) -> None:
    """Rules on the event's own auth_events (the events its `auth_events` names):
    no duplicates, only what the selection algorithm allows, none rejected, a create
    event present, all in the event's room."""
    if event.type == CREATE:
        _require(not list(cited), "m.room.create must not cite auth events")
        return
    allowed = set(auth_types_for_event(
        room_version, event.type, event.sender, event.state_key, event.content))
    seen: set[tuple[str, str]] = set()
    for auth_event in cited:
        key = auth_event.state_key_tuple
        _require(auth_event.is_state(), f"auth event {auth_event.event_id} is not state")
        _require(key not in seen, f"duplicate auth event for {key}")
        _require(key in allowed, f"auth event {key} is not one this event may cite")
        _require(auth_event.rejected_reason is None,
                 f"auth event {auth_event.event_id} was rejected")
        _require(auth_event.room_id == event.room_id,
                 f"auth event {auth_event.event_id} is in another room")
        seen.add(key)
    _require((CREATE, "") in seen, "no m.room.create among the auth events")


def _check_auth_entries(room_version: RoomVersion, event: Event, auth_events: AuthEvents) -> Event:
    """Check the entries of `auth_events` this event may use; return the create event."""
    wanted = auth_types_for_event(
        room_version, event.type, event.sender, event.state_key, event.content)
    for key in wanted:
        auth_event = auth_events.get(key)
        if auth_event is None:
            continue
        _require(auth_event.state_key_tuple == key and auth_event.is_state(),
                 f"auth event {auth_event.event_id} does not match its key {key}")
        _require(auth_event.rejected_reason is None,
                 f"auth event {auth_event.event_id} was rejected")
        _require(auth_event.room_id == event.room_id,
                 f"auth event {auth_event.event_id} is in another room")
    create = auth_events.get((CREATE, ""))
    if create is None:
        raise AuthError("no m.room.create event in the auth events")
    return create


def _check_federate(event: Event, create: Event) -> None:
    if create.content.get("m.federate", True) is False:
        _require(_domain(event.sender) == _domain(create.sender),
                 "this room does not federate and the sender is from another server")


def _check_sender_joined(event: Event, auth_events: AuthEvents) -> None:
    _require(_membership_of(event.sender, auth_events) == "join",
             f"{event.sender} is not joined to the room")


# ---------------------------------------------------------------------------------------
# m.room.create and m.room.aliases


def _check_create(room_version: RoomVersion, event: Event) -> None:
    _require(not event.prev_event_ids(), "m.room.create must not have prev_events")
    _require(_domain(event.room_id) == _domain(event.sender),
             "m.room.create sender and room id have different domains")
    if "room_version" in event.content:
        version = event.content["room_version"]
        _require(isinstance(version, str) and version in KNOWN_ROOM_VERSIONS,
                 f"unknown room version {version!r}")
    if not room_version.implicit_room_creator:
        _require("creator" in event.content, "m.room.create content has no creator")


def _check_aliases(event: Event) -> None:
    _require(event.state_key is not None, "m.room.aliases needs a state_key")
    _require(event.state_key == _domain(event.sender),
             "m.room.aliases state_key must be the sender's server")


# ---------------------------------------------------------------------------------------
# m.room.member


def _check_membership(
    room_version: RoomVersion, event: Event, auth_events: AuthEvents, create: Event
) -> None:
    membership = event.content.get("membership")
    if event.state_key is None or not isinstance(membership, str):
        raise AuthError("m.room.member needs a state_key and a content.membership")
    if room_version.restricted_join_rule and AUTHORISING_USER in event.content:
        _check_authoriser_signed(event)
    if membership == "join":
        _check_join(room_version, event, auth_events, create)
    elif membership == "invite":
        _check_invite(event, auth_events)
    elif membership == "leave":
        _check_leave(room_version, event, auth_events)
    elif membership == "ban":
        _check_ban(event, auth_events)
    elif membership == "knock" and room_version.knock_join_rule:
        _check_knock(room_version, event, auth_events)
    else:
        raise AuthError(f"unknown membership {membership!r}")


def _check_authoriser_signed(event: Event) -> None:
    """The authorising user's server must have signed the join (the signature itself is
    verified with the other signatures when the event is received)."""
    authoriser = event.content[AUTHORISING_USER]
    _require(_is_user_id(authoriser), f"{AUTHORISING_USER} is not a user id")
    signatures = event.get("signatures")
    domain = _domain(authoriser)
    _require(isinstance(signatures, dict) and bool(signatures.get(domain)),
             f"the join is not signed by {domain}, the authorising server")


def _join_rule(auth_events: AuthEvents) -> str:
    event = auth_events.get((JOIN_RULES, ""))
    rule = event.content.get("join_rule") if event is not None else None
    return rule if isinstance(rule, str) else "invite"


def _is_room_creators_first_join(event: Event, create: Event) -> bool:
    prev = event.prev_event_ids()
    return len(prev) == 1 and prev[0] == create.event_id and event.state_key == _creator(create)


def _check_join(
    room_version: RoomVersion, event: Event, auth_events: AuthEvents, create: Event
) -> None:
    if _is_room_creators_first_join(event, create):
        return
    _require(event.sender == event.state_key, "cannot join on behalf of another user")
    current = _membership_of(event.sender, auth_events)
    _require(current != "ban", f"{event.sender} is banned from the room")
    rule = _join_rule(auth_events)
    if rule == "invite" or (rule == "knock" and room_version.knock_join_rule):
        _require(current in ("invite", "join"), "the room is invite-only")
    elif (rule == "restricted" and room_version.restricted_join_rule) or (
        rule == "knock_restricted" and room_version.knock_restricted_join_rule
    ):
        if current not in ("invite", "join"):
            _check_restricted_authoriser(event, auth_events)
    elif rule != "public":
        raise AuthError(f"cannot join a room whose join rule is {rule!r}")


def _check_restricted_authoriser(event: Event, auth_events: AuthEvents) -> None:
    authoriser = event.content.get(AUTHORISING_USER)
    _require(isinstance(authoriser, str),
             f"joining a restricted room needs {AUTHORISING_USER} or an invite")
    assert isinstance(authoriser, str)
    _require(_membership_of(authoriser, auth_events) == "join",
             f"the authorising user {authoriser} is not joined to the room")
    _require(
        get_user_power_level(authoriser, auth_events) >= _named_level("invite", auth_events),
        f"the authorising user {authoriser} may not invite",
    )


def _check_invite(event: Event, auth_events: AuthEvents) -> None:
    if "third_party_invite" in event.content:
        raise AuthError("third-party invites are not supported until federation exists")
    _require(_membership_of(event.sender, auth_events) == "join",
             f"{event.sender} is not joined to the room")
    target = _membership_of(event.state_key or "", auth_events)
    _require(target not in ("join", "ban"), f"{event.state_key} is already {target}")
    _require(
        get_user_power_level(event.sender, auth_events) >= _named_level("invite", auth_events),
        "sender's power level is below the invite level",
    )


def _check_leave(room_version: RoomVersion, event: Event, auth_events: AuthEvents) -> None:
    target = event.state_key or ""
    target_membership = _membership_of(target, auth_events)
    if event.sender == target:
        allowed = ("invite", "join", "knock") if room_version.knock_join_rule else (
            "invite", "join")
        _require(target_membership in allowed,
                 f"cannot leave with current membership {target_membership!r}")
        return
    _require(_membership_of(event.sender, auth_events) == "join",
             f"{event.sender} is not joined to the room")
    sender_level = get_user_power_level(event.sender, auth_events)
    if target_membership == "ban":
        _require(sender_level >= _named_level("ban", auth_events),
                 "unbanning needs the ban level")
    _require(sender_level >= _named_level("kick", auth_events),
             "sender's power level is below the kick level")
    _require(get_user_power_level(target, auth_events) < sender_level,
             "cannot kick a user whose power level is not below the sender's")


def _check_ban(event: Event, auth_events: AuthEvents) -> None:
    _require(_membership_of(event.sender, auth_events) == "join",
             f"{event.sender} is not joined to the room")
    sender_level = get_user_power_level(event.sender, auth_events)
    _require(sender_level >= _named_level("ban", auth_events),
             "sender's power level is below the ban level")
    _require(get_user_power_level(event.state_key or "", auth_events) < sender_level,
             "cannot ban a user whose power level is not below the sender's")


def _check_knock(room_version: RoomVersion, event: Event, auth_events: AuthEvents) -> None:
    rule = _join_rule(auth_events)
    knockable = rule == "knock" or (
        rule == "knock_restricted" and room_version.knock_restricted_join_rule)
    _require(knockable, f"cannot knock on a room whose join rule is {rule!r}")
    _require(event.sender == event.state_key, "cannot knock on behalf of another user")
    current = _membership_of(event.sender, auth_events)
    _require(current not in ("ban", "invite", "join"),
             f"cannot knock with current membership {current!r}")


# ---------------------------------------------------------------------------------------
# m.room.power_levels


def _check_power_levels(
    room_version: RoomVersion, event: Event, auth_events: AuthEvents, sender_level: int
) -> None:
    strict = room_version.enforce_int_power_levels
    new = event.content
    _check_levels_shape(room_version, new)
    previous = auth_events.get((POWER_LEVELS, ""))
    if previous is None:
        return
    old = previous.content
    for key in _LEVEL_KEYS:
        _check_level_change(key, _level(old, key, strict), _level(new, key, strict), sender_level)
    maps = ["events", "notifications"] if room_version.limit_notifications_power_levels else [
        "events"]
    for name in maps:
        old_map, new_map = _level_map(old, name, strict), _level_map(new, name, strict)
        for key in old_map.keys() | new_map.keys():
            _check_level_change(f"{name}.{key}", old_map.get(key), new_map.get(key),
                                sender_level)
    _check_user_changes(event.sender, _level_map(old, "users", strict),
                        _level_map(new, "users", strict), sender_level)


def _check_levels_shape(room_version: RoomVersion, content: Mapping[str, Any]) -> None:
    """Every level must parse (only integers from v10); `users` keys must be user ids."""
    strict = room_version.enforce_int_power_levels
    for key in _LEVEL_KEYS:
        if key in content:
            _require(_parse_level(content[key], strict) is not None,
                     f"power level {key!r} is not an integer")
    maps = ["users", "events"]
    if room_version.limit_notifications_power_levels:
        maps.append("notifications")
    for name in maps:
        if name not in content:
            continue
        mapping = content[name]
        _require(isinstance(mapping, dict), f"power levels {name!r} is not an object")
        for key, value in mapping.items():
            if name == "users":
                _require(_is_user_id(key), f"{key!r} in power levels users is not a user id")
            _require(_parse_level(value, strict) is not None,
                     f"power level {name}.{key} is not an integer")


def _level(content: Mapping[str, Any], key: str, strict: bool) -> int | None:
    return _parse_level(content[key], strict) if key in content else None


def _level_map(content: Mapping[str, Any], name: str, strict: bool) -> dict[str, int]:
    mapping = content.get(name)
    if not isinstance(mapping, dict):
        return {}
    parsed = {key: _parse_level(value, strict) for key, value in mapping.items()}
    return {key: value for key, value in parsed.items() if value is not None}


def _check_level_change(name: str, old: int | None, new: int | None, sender_level: int) -> None:
    if old == new:
        return
    _require(old is None or old <= sender_level,
             f"cannot change {name}: its current level {old} is above the sender's")
    _require(new is None or new <= sender_level,
             f"cannot set {name} to {new}, above the sender's level {sender_level}")


def _check_user_changes(
    sender: str, old: dict[str, int], new: dict[str, int], sender_level: int
) -> None:
    for user in old.keys() | new.keys():
        before, after = old.get(user), new.get(user)
        if before == after:
            continue
        if user != sender:
            _require(before is None or before < sender_level,
                     f"cannot change the level of {user}, who is not below the sender")
        _require(after is None or after <= sender_level,
                 f"cannot give {user} level {after}, above the sender's level {sender_level}")


# ---------------------------------------------------------------------------------------
# m.room.redaction (room versions 1 and 2)


def _check_redaction_v1(event: Event, auth_events: AuthEvents, sender_level: int) -> None:
    if sender_level >= _named_level("redact", auth_events):
        return
    redacts = event.redacts or ""
    _require(_domain(redacts) != "" and _domain(redacts) == _domain(event.event_id),
             "redacting another server's event needs the redact level")
