"""History visibility: which events of a room a user may see (world_readable, shared,
invited, joined), decided from the room state at each event, for every read path."""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from homeserver.events.event import Event

if TYPE_CHECKING:
    from homeserver.server import HomeServer

HISTORY_VISIBILITY = ("m.room.history_visibility", "")


class VisibilityHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def filter_events_for_user(self, user_id: str, events: Iterable[Event]) -> list[Event]:
        """The events `user_id` may see, in the given order."""
        events = list(events)
        if not events:
            return []
        stores = self.hs.stores
        states = await stores.state.get_state_after_events(e.event_id for e in events)
        member_key = ("m.room.member", user_id)
        wanted_ids = {
            state[key] for state in states.values() for key in (HISTORY_VISIBILITY, member_key) if key in state
        }
        state_events = await stores.events.get_events(wanted_ids)
        facts = []
        for event in events:
            state = states.get(event.event_id, {})
            hv_event = state_events.get(state.get(HISTORY_VISIBILITY, ""))
            visibility = hv_event.content.get("history_visibility", "shared") if hv_event else "shared"
            member_event = state_events.get(state.get(member_key, ""))
            facts.append((event, visibility, member_event.membership if member_event else None))
        # The current membership matters only for events the user was not joined at (the
        # usual /sync timeline needs no query).
        rooms_needing_current = list({e.room_id for e, _, then in facts if then != "join"})
        current = await stores.members.get_memberships_in_rooms(user_id, rooms_needing_current) if rooms_needing_current else {}
        visible = []
        for event, visibility, membership_then in facts:
            allowed = _allowed(event, user_id, visibility, membership_then, current.get(event.room_id))
            if not allowed and event.type == HISTORY_VISIBILITY[0] and event.state_key == "":
                # A history_visibility event is visible if the visibility before it allows, too.
                previous = event.unsigned.get("prev_content")
                before = previous.get("history_visibility", "shared") if isinstance(previous, dict) else "shared"
                allowed = _allowed(event, user_id, before, membership_then, current.get(event.room_id))
            if allowed:
                visible.append(event)
        return visible

    async def can_see_room_state(self, user_id: str, room_id: str) -> bool:
        """Whether the user may read the room's current state and members."""
        membership = await self.hs.stores.members.get_membership(room_id, user_id)
        if membership is not None and membership[0] == "join":
            return True
        return await self.is_world_readable(room_id)

    async def is_world_readable(self, room_id: str) -> bool:
        event_id = await self.hs.stores.state.get_current_state_event_id(room_id, *HISTORY_VISIBILITY)
        if event_id is None:
            return False
        event = await self.hs.stores.events.get_event(event_id)
        return event is not None and event.content.get("history_visibility") == "world_readable"


def _allowed(event: Event, user_id: str, visibility: str, membership: str | None, current: str | None) -> bool:
    if event.type == "m.room.member" and event.state_key == user_id:
        return True
    if visibility == "world_readable" or membership == "join":
        return True
    if visibility == "shared":
        return current == "join"
    if visibility == "invited":
        return membership == "invite"
    return False
