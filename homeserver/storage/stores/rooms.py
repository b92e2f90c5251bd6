"""Rooms: their version and creator, which persister writes them, aliases, the public room
directory and event reports."""

import hashlib
from dataclasses import dataclass

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.events import placeholders
from homeserver.util.caches import LruCache
from homeserver.util.clock import now_ms


@dataclass(frozen=True)
class RoomInfo:
    room_id: str
    room_version: str
    creator: str | None
    is_public: bool


class RoomExistsError(Exception):
    pass


def choose_persister(room_id: str, writers: list[str]) -> str:
    """Rendezvous hashing: adding a writer moves no room already assigned (the assignment is
    stored), and new rooms spread evenly."""
    return max(writers, key=lambda w: hashlib.sha256(f"{w}\0{room_id}".encode()).digest())


class RoomStore:
    def __init__(self, db: Database):
        self.db = db
        self._version_cache: LruCache[str, str] = LruCache("room_versions", 100_000)
        self._persister_cache: LruCache[str, str] = LruCache("room_persisters", 100_000)

    async def store_room(self, room_id: str, room_version: str, creator: str, is_public: bool) -> None:
        def txn_fn(txn: Txn) -> None:
            txn.execute("SELECT 1 FROM rooms WHERE room_id = ?", (room_id,))
            if txn.fetchone():
                raise RoomExistsError(room_id)
            txn.execute(
                "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (?, ?, ?, ?, ?)",
                (room_id, room_version, creator, int(is_public), now_ms()),
            )

        await self.db.run_interaction("store_room", txn_fn)

    async def get_room(self, room_id: str) -> RoomInfo | None:
        rows = await self.db.execute(
            "get_room", "SELECT room_id, room_version, creator, is_public FROM rooms WHERE room_id = ?", room_id
        )
        if not rows:
            return None
        rid, version, creator, public = rows[0]
        return RoomInfo(rid, version, creator, bool(public))

    async def get_room_version(self, room_id: str) -> str | None:
        cached = self._version_cache.get(room_id)
        if cached is not None:
            return cached
        room = await self.get_room(room_id)
        if room is None:
            return None
        self._version_cache.set(room_id, room.room_version)
        return room.room_version

    async def get_or_assign_persister(self, room_id: str, writers: list[str]) -> str:
        """The instance that persists this room's events, assigned on first use and kept."""
        cached = self._persister_cache.get(room_id)
        if cached is not None:
            return cached

        def txn_fn(txn: Txn) -> str:
            txn.execute("SELECT instance_name FROM room_persisters WHERE room_id = ?", (room_id,))
            row = txn.fetchone()
            if row:
                return str(row[0])
            chosen = choose_persister(room_id, writers)
            txn.execute(
                "INSERT INTO room_persisters (room_id, instance_name) VALUES (?, ?) ON CONFLICT (room_id) DO NOTHING",
                (room_id, chosen),
            )
            txn.execute("SELECT instance_name FROM room_persisters WHERE room_id = ?", (room_id,))
            return str(txn.fetchone()[0])

        instance = await self.db.run_interaction("get_or_assign_persister", txn_fn)
        self._persister_cache.set(room_id, instance)
        return instance

    # --- directory -------------------------------------------------------------------------

    async def set_room_is_public(self, room_id: str, is_public: bool) -> None:
        await self.db.execute("set_room_is_public", "UPDATE rooms SET is_public = ? WHERE room_id = ?", int(is_public), room_id)

    async def get_public_room_ids(self) -> list[str]:
        rows = await self.db.execute("get_public_room_ids", "SELECT room_id FROM rooms WHERE is_public = 1")
        return [r[0] for r in rows]

    # --- aliases ---------------------------------------------------------------------------

    async def create_alias(self, alias: str, room_id: str, creator: str) -> bool:
        """False when the alias already exists."""

        def txn_fn(txn: Txn) -> bool:
            txn.execute("SELECT 1 FROM room_aliases WHERE room_alias = ?", (alias,))
            if txn.fetchone():
                return False
            txn.execute(
                "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (?, ?, ?)", (alias, room_id, creator)
            )
            return True

        return await self.db.run_interaction("create_alias", txn_fn)

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        """(room_id, creator) of the alias."""
        rows = await self.db.execute("get_alias", "SELECT room_id, creator FROM room_aliases WHERE room_alias = ?", alias)
        return (rows[0][0], rows[0][1]) if rows else None

    async def delete_alias(self, alias: str) -> None:
        await self.db.execute("delete_alias", "DELETE FROM room_aliases WHERE room_alias = ?", alias)

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self.db.execute(
            "get_aliases_for_room", "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias", room_id
        )
        return [r[0] for r in rows]

    # --- summaries -------------------------------------------------------------------------

    async def get_summary_state_ids(self, room_ids: list[str], types: list[str]) -> dict[str, dict[tuple[str, str], str]]:
        """room -> {(type, state_key): event_id} of the given state types, for many rooms at once."""
        if not room_ids:
            return {}
        rooms = placeholders(room_ids)
        kinds = placeholders(types)
        rows = await self.db.execute(
            "get_summary_state_ids",
            f"SELECT room_id, type, state_key, event_id FROM current_state_events WHERE room_id IN ({rooms})"
            f" AND type IN ({kinds})",
            *room_ids, *types,
        )
        result: dict[str, dict[tuple[str, str], str]] = {room_id: {} for room_id in room_ids}
        for room_id, etype, state_key, event_id in rows:
            result[room_id][(etype, state_key)] = event_id
        return result

    async def get_joined_counts(self, room_ids: list[str]) -> dict[str, int]:
        if not room_ids:
            return {}
        rooms = placeholders(room_ids)
        rows = await self.db.execute(
            "get_joined_counts",
            "SELECT room_id, COUNT(*) FROM current_state_events WHERE type = 'm.room.member' AND membership = 'join'"
            f" AND room_id IN ({rooms}) GROUP BY room_id",
            *room_ids,
        )
        counts = {room_id: 0 for room_id in room_ids}
        counts.update({room_id: int(count) for room_id, count in rows})
        return counts

    # --- reports ---------------------------------------------------------------------------

    async def add_report(self, room_id: str, event_id: str, user_id: str, reason: str | None, content: str) -> None:
        """Store a user's report of an event (or of the room, with an empty event id)."""
        import secrets

        report_id = now_ms() * 1000 + secrets.randbelow(1000)
        await self.db.execute(
            "add_report",
            "INSERT INTO event_reports (id, received_ts, room_id, event_id, user_id, reason, content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            report_id, now_ms(), room_id, event_id, user_id, reason, content,
        )

    async def get_reports(self) -> list[dict[str, object]]:
        rows = await self.db.execute(
            "get_reports",
            "SELECT id, received_ts, room_id, event_id, user_id, reason, content FROM event_reports ORDER BY id",
        )
        keys = ("id", "received_ts", "room_id", "event_id", "user_id", "reason", "content")
        return [dict(zip(keys, row, strict=True)) for row in rows]
