"""The state before a new event: read from the state group of its single prev event, or
resolved (state resolution of the room version) across several prev events."""

from collections.abc import Collection
from typing import TYPE_CHECKING

from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion
from homeserver.storage.persist_events import EventContext

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class StateHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def compute_context(self, room_version: RoomVersion, prev_event_ids: Collection[str]) -> EventContext:
        if not prev_event_ids:
            return EventContext(state_group_before=None, state_before={})
        state_store = self.hs.stores.state
        groups = await state_store.get_state_groups_for_events(prev_event_ids)
        distinct = set(groups.values())
        states = await state_store.get_state_for_groups(distinct)
        if len(distinct) == 1:
            group = distinct.pop()
            return EventContext(state_group_before=group, state_before=states[group])
        from homeserver.state import resolve_state

        events_store = self.hs.stores.events

        async def fetch(event_ids: Collection[str]) -> dict[str, Event]:
            return await events_store.get_events(event_ids, allow_rejected=True)

        resolved = await resolve_state(room_version, list(states.values()), {}, fetch)
        return EventContext(state_group_before=None, state_before=resolved)
