"""The original state resolution algorithm, used by room version 1 only.

The resolved state starts as every value on which the states do not disagree (a key that
only some states have is not a conflict). Conflicts are then settled in passes, each pass
authorising against the state as resolved so far:

1. `m.room.power_levels`, then `m.room.join_rules`, then each `m.room.member` key: the
   candidates are taken by ascending depth, then descending SHA-1 of the event id; the
   first one is accepted, and each next one replaces it while the auth rules allow it,
   stopping at the first that they do not. Member keys are all settled against the state
   left by the join rules pass, so that their order does not matter.
2. Every other key: the first candidate, by descending depth then ascending SHA-1 of the
   event id, that the auth rules allow; if none is allowed, the last of them.

This algorithm is known to let state reset to older values; later room versions use
`resolution_v2`.
"""

import hashlib
from collections.abc import Mapping, Sequence

from homeserver.events.auth import check_auth
from homeserver.events.builder import auth_types_for_event
from homeserver.events.errors import AuthError
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion
from homeserver.state.resolution_v2 import POWER_LEVELS_KEY, EventCache, FetchEvents, StateKey

_JOIN_RULES = "m.room.join_rules"
_MEMBER = "m.room.member"


async def resolve_state_v1(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: dict[str, Event],
    fetch_events: FetchEvents,
) -> dict[StateKey, str]:
    """Resolve `state_sets` (each `(type, state_key) -> event id`) into one state map."""
    if len(state_sets) <= 1:
        return dict(state_sets[0]) if state_sets else {}
    state, conflicted_ids = split(state_sets)
    if not conflicted_ids:
        return state
    cache = EventCache(event_map, fetch_events)
    await cache.load({e for ids in conflicted_ids.values() for e in ids})
    conflicted = _known_candidates(conflicted_ids, cache, state)
    await cache.load(_auth_state_ids(room_version, conflicted, state))
    return _resolve(room_version, state, conflicted, cache)


def split(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], dict[StateKey, set[str]]]:
    """The union of the states without the keys they disagree on, and those keys' values."""
    values: dict[StateKey, set[str]] = {}
    for state in state_sets:
        for key, event_id in state.items():
            values.setdefault(key, set()).add(event_id)
    unconflicted = {k: next(iter(v)) for k, v in values.items() if len(v) == 1}
    conflicted = {k: v for k, v in values.items() if len(v) > 1}
    return unconflicted, conflicted


def _known_candidates(
    conflicted_ids: dict[StateKey, set[str]], cache: EventCache, state: dict[StateKey, str]
) -> dict[StateKey, list[Event]]:
    """The fetched candidates of each key; a key left with one candidate is settled."""
    conflicted: dict[StateKey, list[Event]] = {}
    for key, ids in conflicted_ids.items():
        events = [e for e in (cache.get(i) for i in ids) if e is not None]
        if len(events) == 1:
            state[key] = events[0].event_id
        elif events:
            conflicted[key] = events
    return conflicted


def _auth_state_ids(
    room_version: RoomVersion, conflicted: dict[StateKey, list[Event]], state: dict[StateKey, str]
) -> set[str]:
    """The ids in `state` that authorising any candidate may need."""
    needed: set[str] = set()
    for events in conflicted.values():
        for event in events:
            for key in _auth_types(room_version, event):
                if key in state:
                    needed.add(state[key])
    return needed


def _resolve(
    room_version: RoomVersion,
    state: dict[StateKey, str],
    conflicted: dict[StateKey, list[Event]],
    cache: EventCache,
) -> dict[StateKey, str]:
    """Settle the conflicts in the order the algorithm gives, updating `state`."""
    if POWER_LEVELS_KEY in conflicted:
        state[POWER_LEVELS_KEY] = _by_auth_chain(room_version, conflicted[POWER_LEVELS_KEY], state, cache)
    done = {POWER_LEVELS_KEY}
    for event_type in (_JOIN_RULES, _MEMBER):
        keys = sorted(k for k in conflicted if k[0] == event_type and k not in done)
        settled = {k: _by_auth_chain(room_version, conflicted[k], state, cache) for k in keys}
        state.update(settled)
        done.update(keys)
    for key in sorted(conflicted.keys() - done):
        state[key] = _first_allowed(room_version, conflicted[key], state, cache)
    return state


def _by_auth_chain(
    room_version: RoomVersion, events: list[Event], state: Mapping[StateKey, str], cache: EventCache
) -> str:
    """Walk the candidates oldest first, keeping the last one of an allowed run."""
    ordered = sorted(events, key=lambda e: (e.depth, _negated_sha1(e.event_id)))
    current = dict(state)
    winner = ordered[0]
    for event in ordered[1:]:
        current[winner.state_key_tuple] = winner.event_id
        if not _allowed(room_version, event, current, cache):
            break
        winner = event
    return winner.event_id


def _first_allowed(
    room_version: RoomVersion, events: list[Event], state: Mapping[StateKey, str], cache: EventCache
) -> str:
    """The newest candidate that the auth rules allow, or the oldest if none is."""
    ordered = sorted(events, key=lambda e: (-e.depth, _sha1(e.event_id)))
    for event in ordered:
        if _allowed(room_version, event, state, cache):
            return event.event_id
    return ordered[-1].event_id


def _allowed(
    room_version: RoomVersion, event: Event, state: Mapping[StateKey, str], cache: EventCache
) -> bool:
    """Whether the auth rules allow `event` in `state`."""
    auth_events: dict[StateKey, Event] = {}
    for key in _auth_types(room_version, event):
        auth_event = cache.get(state[key]) if key in state else None
        if auth_event is not None:
            auth_events[key] = auth_event
    try:
        check_auth(room_version, event, auth_events)
    except AuthError:
        return False
    return True


def _auth_types(room_version: RoomVersion, event: Event) -> list[StateKey]:
    return list(
        auth_types_for_event(room_version, event.type, event.sender, event.state_key, event.content)
    )


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode("utf-8")).hexdigest()


def _negated_sha1(event_id: str) -> int:
    """Sorts in descending order of the SHA-1 of `event_id`."""
    return -int(_sha1(event_id), 16)
