"""Summaries of rooms (name, topic, alias, avatar, join rule, member count ...) for the public
room directory, the space hierarchy and the room summary endpoint, computed for many rooms at
once."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homeserver.server import HomeServer

SUMMARY_TYPES = [
    "m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias", "m.room.avatar",
    "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.encryption",
]


class RoomSummaryHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def summaries(self, room_ids: list[str]) -> dict[str, dict[str, Any]]:
        """room id -> a PublishedRoomsChunk-style summary (plus room_version and encryption)."""
        rooms = self.hs.stores.rooms
        state_ids = await rooms.get_summary_state_ids(room_ids, SUMMARY_TYPES)
        counts = await rooms.get_joined_counts(room_ids)
        all_ids = [event_id for state in state_ids.values() for event_id in state.values()]
        events = await self.hs.stores.events.get_events(all_ids)
        result = {}
        for room_id in room_ids:
            contents = {
                etype: events[event_id].content
                for (etype, _), event_id in state_ids.get(room_id, {}).items() if event_id in events
            }
            if "m.room.create" not in contents:
                continue
            result[room_id] = _summary(room_id, contents, counts.get(room_id, 0))
        return result


def _summary(room_id: str, contents: dict[str, dict[str, Any]], joined: int) -> dict[str, Any]:
    create = contents.get("m.room.create", {})
    summary: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": joined,
        "world_readable": contents.get("m.room.history_visibility", {}).get("history_visibility") == "world_readable",
        "guest_can_join": contents.get("m.room.guest_access", {}).get("guest_access") == "can_join",
        "join_rule": contents.get("m.room.join_rules", {}).get("join_rule", "invite"),
        "room_version": create.get("room_version", "1"),
    }
    optional = {
        "name": contents.get("m.room.name", {}).get("name"),
        "topic": contents.get("m.room.topic", {}).get("topic"),
        "canonical_alias": contents.get("m.room.canonical_alias", {}).get("alias"),
        "avatar_url": contents.get("m.room.avatar", {}).get("url"),
        "room_type": create.get("type"),
        "encryption": contents.get("m.room.encryption", {}).get("algorithm"),
    }
    summary.update({key: value for key, value in optional.items() if isinstance(value, str) and value})
    allow = contents.get("m.room.join_rules", {}).get("allow")
    if summary["join_rule"] in ("restricted", "knock_restricted") and isinstance(allow, list):
        allowed = [a["room_id"] for a in allow
                   if isinstance(a, dict) and a.get("type") == "m.room_membership" and isinstance(a.get("room_id"), str)]
        if allowed:
            summary["allowed_room_ids"] = allowed
    return summary
