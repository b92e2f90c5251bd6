"""Memberships: who is in which room (from current state) and each membership event."""

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.events import placeholders
from homeserver.util.caches import StreamCache


def _same(key: str) -> str:
    return key


def _user_of(key: tuple[str, str]) -> str:
    return key[0]


class RoomMemberStore:
    def __init__(self, db: Database, event_ids: StreamIdGenerator):
        self.db = db
        # Read on every /sync and every persisted batch; kept until the events stream records
        # a membership change of the user or room (see `changed_entities`).
        position, changes = event_ids.get_current_token, event_ids.changes
        self._memberships_of_user: StreamCache[str, list[tuple[str, str, str, int]]] = StreamCache(
            "memberships_of_user", changes, position)
        self._members_of_room: StreamCache[str, list[tuple[str, str]]] = StreamCache(
            "members_of_room", changes, position)
        self._joined_display_names: StreamCache[str, dict[str, str | None]] = StreamCache(
            "joined_display_names", changes, position)
        self._stay_began: StreamCache[tuple[str, str], int] = StreamCache("membership_stay_began", changes, position)

    async def get_rooms_for_user(self, user_id: str, memberships: tuple[str, ...] = ("join",)) -> list[str]:
        marks = placeholders(memberships)
        rows = await self.db.execute(
            "get_rooms_for_user",
            "SELECT room_id FROM current_state_events WHERE type = 'm.room.member' AND state_key = ?"
            f" AND membership IN ({marks}) ORDER BY room_id",
            user_id, *memberships,
        )
        return [r[0] for r in rows]

    async def get_memberships_in_rooms(self, user_id: str, room_ids: list[str]) -> dict[str, str]:
        """room -> the user's current membership, for the rooms where they have one (from the
        cached memberships of the user)."""
        if not room_ids:
            return {}
        wanted = set(room_ids)
        return {room_id: membership for room_id, membership, _, _ in await self.get_memberships_for_user(user_id)
                if room_id in wanted}

    async def get_membership(self, room_id: str, user_id: str) -> tuple[str, str] | None:
        """(membership, event_id) of the user's current membership in the room."""
        rows = await self.db.execute(
            "get_membership",
            "SELECT membership, event_id FROM current_state_events WHERE room_id = ? AND type = 'm.room.member'"
            " AND state_key = ?",
            room_id, user_id,
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def get_members(self, room_id: str, memberships: tuple[str, ...] = ("join",)) -> list[str]:
        marks = placeholders(memberships)
        rows = await self.db.execute(
            "get_members",
            "SELECT state_key FROM current_state_events WHERE room_id = ? AND type = 'm.room.member'"
            f" AND membership IN ({marks}) ORDER BY state_key",
            room_id, *memberships,
        )
        return [r[0] for r in rows]

    async def forget(self, user_id: str, room_id: str) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute("DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?", (user_id, room_id))
            txn.execute("INSERT INTO room_forgotten (user_id, room_id) VALUES (?, ?)", (user_id, room_id))

        await self.db.run_interaction("forget_room", txn_fn)

    async def unforget(self, user_id: str, room_id: str) -> None:
        await self.db.execute("unforget_room", "DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?", user_id, room_id)

    async def is_forgotten(self, user_id: str, room_id: str) -> bool:
        rows = await self.db.execute(
            "is_forgotten", "SELECT 1 FROM room_forgotten WHERE user_id = ? AND room_id = ?", user_id, room_id
        )
        return bool(rows)

    async def get_memberships_for_user(self, user_id: str) -> list[tuple[str, str, str, int]]:
        """(room_id, membership, event_id, stream_ordering) of every room the user has a
        membership in, from current state. Cached: do not modify the list."""
        return await self._memberships_of_user.get_one(user_id, user_id, lambda: self._read_memberships(user_id))

    async def _read_memberships(self, user_id: str) -> list[tuple[str, str, str, int]]:
        rows = await self.db.execute(
            "get_memberships_for_user",
            "SELECT c.room_id, c.membership, c.event_id, e.stream_ordering FROM current_state_events AS c"
            " JOIN events AS e ON e.event_id = c.event_id WHERE c.type = 'm.room.member' AND c.state_key = ?",
            user_id,
        )
        return [(r, m, e, int(s)) for r, m, e, s in rows]

    async def get_members_of_rooms(self, room_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        """room -> [(user_id, membership)] for joined and invited members. Cached: do not
        modify the lists."""
        return await self._members_of_room.get_many(room_ids, _same, self._read_members_of_rooms, [])

    async def _read_members_of_rooms(self, room_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
        marks = placeholders(room_ids)
        rows = await self.db.execute(
            "get_members_of_rooms",
            f"SELECT room_id, state_key, membership FROM current_state_events WHERE room_id IN ({marks})"
            " AND type = 'm.room.member' AND membership IN ('join', 'invite') ORDER BY room_id, state_key",
            *room_ids,
        )
        result: dict[str, list[tuple[str, str]]] = {room_id: [] for room_id in room_ids}
        for room_id, user_id, membership in rows:
            result[room_id].append((user_id, membership))
        return result

    async def get_joined_members_with_display_names(self, room_ids: list[str]) -> dict[str, dict[str, str | None]]:
        """room -> {user_id: display name from their current member event} of joined members.
        Cached: do not modify the dicts."""
        return await self._joined_display_names.get_many(room_ids, _same, self._read_joined_display_names, {})

    async def _read_joined_display_names(self, room_ids: list[str]) -> dict[str, dict[str, str | None]]:
        marks = placeholders(room_ids)
        rows = await self.db.execute(
            "get_joined_members_with_display_names",
            "SELECT c.room_id, c.state_key, m.display_name FROM current_state_events AS c"
            " LEFT JOIN room_memberships AS m ON m.event_id = c.event_id"
            f" WHERE c.room_id IN ({marks}) AND c.type = 'm.room.member' AND c.membership = 'join'",
            *room_ids,
        )
        result: dict[str, dict[str, str | None]] = {room_id: {} for room_id in room_ids}
        for room_id, user_id, display_name in rows:
            result[room_id][user_id] = display_name
        return result

    async def get_rooms_joined_throughout(self, user_id: str, room_ids: list[str], since: int, upto: int) -> set[str]:
        """Those of `room_ids` where the user was joined at stream position `since` and had no
        membership but join from then up to `upto` (a profile change is a join after a join)."""
        if not room_ids:
            return set()
        marks = placeholders(room_ids)
        rows = await self.db.execute(
            "get_rooms_joined_throughout",
            "SELECT room_id, membership, stream_ordering FROM room_memberships"
            f" WHERE user_id = ? AND room_id IN ({marks}) AND stream_ordering <= ? ORDER BY stream_ordering",
            user_id, *room_ids, upto,
        )
        at_since: dict[str, str] = {}
        left_since: set[str] = set()
        for room_id, membership, ordering in rows:
            if int(ordering) <= since:
                at_since[room_id] = membership
            elif membership != "join":
                left_since.add(room_id)
        return {r for r, m in at_since.items() if m == "join" and r not in left_since}

    async def get_last_non_join_orderings(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """room -> stream ordering of the user's latest membership event there that was not a
        join (invite, leave, knock, ban): where their current stay in the room began."""
        found = await self._stay_began.get_many(
            [(user_id, room_id) for room_id in room_ids], _user_of,
            lambda keys: self._read_last_non_join_orderings(user_id, [room_id for _, room_id in keys]), 0,
        )
        return {room_id: ordering for (_, room_id), ordering in found.items() if ordering}

    async def _read_last_non_join_orderings(self, user_id: str, room_ids: list[str]) -> dict[tuple[str, str], int]:
        marks = placeholders(room_ids)
        rows = await self.db.execute(
            "get_last_non_join_orderings",
            "SELECT room_id, MAX(stream_ordering) FROM room_memberships"
            f" WHERE user_id = ? AND membership != 'join' AND room_id IN ({marks}) GROUP BY room_id",
            user_id, *room_ids,
        )
        return {(user_id, room_id): int(ordering) for room_id, ordering in rows}
