"""Room state: resolving the states of several forward extremities into one.

`resolve_state` picks the algorithm that the room version names: the original one
(`resolution_v1`, room version 1) or state resolution v2 (`resolution_v2`, every later
version). Both take the same arguments and return a state map of
`(event type, state key) -> event id`.
"""

from collections.abc import Mapping, Sequence

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion
from homeserver.state.resolution_v1 import resolve_state_v1
from homeserver.state.resolution_v2 import FetchEvents, StateKey, resolve_state_v2

__all__ = ["FetchEvents", "StateKey", "resolve_state", "resolve_state_v1", "resolve_state_v2"]


async def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    event_map: dict[str, Event],
    fetch_events: FetchEvents,
) -> dict[StateKey, str]:
    """Resolve `state_sets` with the algorithm of `room_version`.

    `event_map` is used as a cache and grows with every event fetched; `fetch_events` is
    asked for the events missing from it and returns those it knows (rejected ones
    included, with `rejected_reason` set).
    """
    if room_version.state_res == 1:
        return await resolve_state_v1(room_version, state_sets, event_map, fetch_events)
    return await resolve_state_v2(room_version, state_sets, event_map, fetch_events)
