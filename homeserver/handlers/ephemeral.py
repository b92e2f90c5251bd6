"""What the typing and receipts sync sources share: whether a sync filter lets a room's
ephemeral event of some type through, and adding such an event to the room's `ephemeral`
section of a `/sync` response."""

from typing import Any

from homeserver.handlers.filtering import EventFilter, SyncFilter
from homeserver.handlers.sync_sources import ensure_joined_room


def type_allowed(event_filter: EventFilter, event_type: str) -> bool:
    """The filter's `types` / `not_types` (a trailing `*` matches any suffix)."""

    def matches(patterns: list[str]) -> bool:
        return any(event_type == p or (p.endswith("*") and event_type.startswith(p[:-1])) for p in patterns)

    if event_filter.types is not None and not matches(event_filter.types):
        return False
    return not matches(event_filter.not_types)


def ephemeral_allowed(sync_filter: SyncFilter, room_id: str, event_type: str) -> bool:
    ephemeral = sync_filter.ephemeral
    return sync_filter.allows_room(room_id) and ephemeral.allows_room(room_id) and type_allowed(ephemeral, event_type)


def add_ephemeral(response: dict[str, Any], room_id: str, event: dict[str, Any]) -> None:
    room = ensure_joined_room(response, room_id)
    room.setdefault("ephemeral", {"events": []})["events"].append(event)
