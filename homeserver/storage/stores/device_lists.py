"""Read-only queries behind `device_lists` in `/sync` and `/keys/changes`: whose devices
changed among the users someone shares rooms with, and how room memberships moved between two
positions of the events stream. The tables belong to the device and room stores; nothing here
writes."""

from homeserver.storage.database import Database

BATCH = 300

# The rooms a user is joined to now, plus those whose (non-join) membership changed after
# the given events position: the rooms where joins and leaves may matter to the user.
_RELEVANT_ROOMS = (
    "SELECT c.room_id FROM current_state_events AS c JOIN events AS ce ON ce.event_id = c.event_id"
    " WHERE c.type = 'm.room.member' AND c.state_key = ? AND (c.membership = 'join' OR ce.stream_ordering > ?)"
)

_SHARED_WITH = (
    "SELECT o.state_key FROM current_state_events AS me JOIN current_state_events AS o ON o.room_id = me.room_id"
    " WHERE me.type = 'm.room.member' AND me.state_key = ? AND me.membership = 'join'"
    " AND o.type = 'm.room.member' AND o.membership = 'join'"
)


class DeviceListStore:
    def __init__(self, db: Database):
        self.db = db

    async def get_changed_users_sharing_rooms(self, user_id: str, from_id: int, to_id: int) -> set[str]:
        """Users (the user included) with a device list change in (from_id, to_id] who share
        a joined room with the user now."""
        rows = await self.db.execute(
            "get_changed_users_sharing_rooms",
            "SELECT DISTINCT d.user_id FROM device_lists_stream AS d WHERE d.stream_id > ? AND d.stream_id <= ?"
            f" AND (d.user_id = ? OR d.user_id IN ({_SHARED_WITH}))",
            from_id, to_id, user_id, user_id,
        )
        return {r[0] for r in rows}

    async def get_membership_changes(self, user_id: str, from_pos: int, to_pos: int) -> list[tuple[str, str, str, str | None]]:
        """(room_id, user_id, membership, previous membership) of each membership event in
        (from_pos, to_pos] of the events stream, in stream order, in the rooms relevant to
        the user (joined now, or left since `from_pos`)."""
        rows = await self.db.execute(
            "get_membership_changes",
            "SELECT m.room_id, m.user_id, m.membership, ("
            "  SELECT p.membership FROM room_memberships AS p WHERE p.room_id = m.room_id AND p.user_id = m.user_id"
            "  AND p.stream_ordering < m.stream_ordering ORDER BY p.stream_ordering DESC LIMIT 1"
            ") FROM events AS e JOIN room_memberships AS m ON m.event_id = e.event_id"
            " WHERE e.type = 'm.room.member' AND e.stream_ordering > ? AND e.stream_ordering <= ?"
            f" AND e.room_id IN ({_RELEVANT_ROOMS}) ORDER BY e.stream_ordering",
            from_pos, to_pos, user_id, from_pos,
        )
        return [(r, u, m, p) for r, u, m, p in rows]

    async def get_joined_members(self, room_ids: list[str]) -> set[str]:
        members: set[str] = set()
        ordered = sorted(room_ids)
        for start in range(0, len(ordered), BATCH):
            batch = ordered[start:start + BATCH]
            rows = await self.db.execute(
                "get_joined_members_of_rooms",
                "SELECT DISTINCT state_key FROM current_state_events WHERE type = 'm.room.member'"
                f" AND membership = 'join' AND room_id IN ({', '.join('?' for _ in batch)})",
                *batch,
            )
            members.update(r[0] for r in rows)
        return members

    async def filter_users_sharing_rooms(self, user_id: str, candidates: set[str]) -> set[str]:
        """Those of `candidates` who share a joined room with the user now."""
        sharing: set[str] = set()
        ordered = sorted(candidates)
        for start in range(0, len(ordered), BATCH):
            batch = ordered[start:start + BATCH]
            rows = await self.db.execute(
                "filter_users_sharing_rooms",
                f"SELECT DISTINCT shared.state_key FROM ({_SHARED_WITH}) AS shared"
                f" WHERE shared.state_key IN ({', '.join('?' for _ in batch)})",
                user_id, *batch,
            )
            sharing.update(r[0] for r in rows)
        return sharing
