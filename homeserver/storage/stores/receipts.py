"""Read receipts: the `receipts` table and stream (the latest receipt of each room, receipt
type, user and thread), and the reads `/sync` and the unread counts need.

An unthreaded receipt is stored with thread_id '' and returned with thread_id None.
"""

from collections.abc import Collection
from dataclasses import dataclass

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.events import in_list
from homeserver.util.caches import StreamCache

UNTHREADED = ""
PRIVATE_READ = "m.read.private"
# Receipt types that say how far a user has read (for unread counts).
READ_TYPES = ("m.read", PRIVATE_READ)

_COLUMNS = "room_id, receipt_type, user_id, thread_id, event_id, ts, stream_id"


@dataclass(frozen=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str | None
    event_id: str
    ts: int
    stream_id: int


def _receipt(row: tuple[str, str, str, str, str, int, int]) -> Receipt:
    room_id, receipt_type, user_id, thread_id, event_id, ts, stream_id = row
    return Receipt(room_id, receipt_type, user_id, thread_id or None, event_id, int(ts), int(stream_id))


def _user_of(key: tuple[str, str]) -> str:
    return key[0]


class ReceiptsStore:
    def __init__(self, db: Database, stream_ids: StreamIdGenerator):
        self.db = db
        self.stream_ids = stream_ids
        # (user, room) -> how far the user has read; valid until the stream records a receipt
        # of theirs (writes record (user, room), replication records the authors).
        self._last_read: StreamCache[tuple[str, str], int] = StreamCache(
            "last_read_orderings", stream_ids.changes, stream_ids.get_current_token, 50_000)

    # --- writes -------------------------------------------------------------------------------

    async def add_receipt(
        self, room_id: str, receipt_type: str, user_id: str, thread_id: str | None,
        event_id: str, event_stream_ordering: int, ts: int,
    ) -> int | None:
        """Store a receipt and return its stream position; None (nothing stored) when the
        same room, type, user and thread already has a receipt for this event or a later one."""
        thread = thread_id or UNTHREADED

        def txn_fn(txn: Txn) -> int | None:
            txn.execute(
                "SELECT event_stream_ordering FROM receipts"
                " WHERE room_id = ? AND receipt_type = ? AND user_id = ? AND thread_id = ?",
                (room_id, receipt_type, user_id, thread),
            )
            row = txn.fetchone()
            if row is not None and int(row[0]) >= event_stream_ordering:
                return None
            stream_id = self.stream_ids.get_next_txn(txn, (user_id, room_id))
            txn.execute(
                "INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, event_stream_ordering,"
                " ts, stream_id, instance_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET event_id = excluded.event_id,"
                " event_stream_ordering = excluded.event_stream_ordering, ts = excluded.ts,"
                " stream_id = excluded.stream_id, instance_name = excluded.instance_name",
                (room_id, receipt_type, user_id, thread, event_id, event_stream_ordering, ts, stream_id,
                 self.stream_ids.instance_name),
            )
            return stream_id

        return await self.db.run_interaction("add_receipt", txn_fn)

    # --- reads for /sync ----------------------------------------------------------------------------

    async def get_room_receipts(
        self, room_ids: Collection[str], viewer: str, upto: int, since: int | None = None,
    ) -> list[Receipt]:
        """The receipts of the rooms with a position in (since, upto] (all up to `upto` when
        `since` is None), leaving out other users' private receipts."""
        if not room_ids:
            return []
        clause, args = in_list("room_id", room_ids)
        lower = "" if since is None else " AND stream_id > ?"
        rows = await self.db.execute(
            "get_room_receipts",
            f"SELECT {_COLUMNS} FROM receipts WHERE {clause} AND stream_id <= ?{lower}"
            " AND (receipt_type <> ? OR user_id = ?) ORDER BY stream_id",
            *args, upto, *([] if since is None else [since]), PRIVATE_READ, viewer,
        )
        return [_receipt(r) for r in rows]

    async def get_rooms_with_own_receipts_between(self, user_id: str, since: int, upto: int) -> list[str]:
        """Rooms where the user's own read receipts (public or private) moved in (since, upto]."""
        clause, args = in_list("receipt_type", READ_TYPES)
        rows = await self.db.execute(
            "get_rooms_with_own_receipts_between",
            f"SELECT DISTINCT room_id FROM receipts WHERE user_id = ? AND {clause} AND stream_id > ? AND stream_id <= ?",
            user_id, *args, since, upto,
        )
        return sorted(r[0] for r in rows)

    # --- reads for unread counts ----------------------------------------------------------------------

    async def get_last_read_stream_orderings(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """Per room, the events-stream position of the event of the user's latest `m.read` or
        `m.read.private` receipt in any thread; rooms without one are left out. Read on every
        /sync with unread counts; cached until the user's next receipt."""
        found = await self._last_read.get_many(
            [(user_id, room_id) for room_id in room_ids], _user_of,
            lambda keys: self._read_last_read_stream_orderings(user_id, [room_id for _, room_id in keys]), 0,
        )
        return {room_id: ordering for (_, room_id), ordering in found.items() if ordering}

    async def _read_last_read_stream_orderings(self, user_id: str, room_ids: list[str]) -> dict[tuple[str, str], int]:
        rooms_clause, room_args = in_list("room_id", room_ids)
        types_clause, type_args = in_list("receipt_type", READ_TYPES)
        rows = await self.db.execute(
            "get_last_read_stream_orderings",
            f"SELECT room_id, MAX(event_stream_ordering) FROM receipts WHERE user_id = ? AND {rooms_clause}"
            f" AND {types_clause} GROUP BY room_id",
            user_id, *room_args, *type_args,
        )
        return {(user_id, room_id): int(ordering) for room_id, ordering in rows}

    # --- catching up on the stream ------------------------------------------------------------------

    async def get_receipts_since(self, from_id: int, to_id: int) -> list[Receipt]:
        """Every receipt with a position in (from_id, to_id], in order, for a process catching
        up on the stream (private ones included: the reader decides who sees them)."""
        rows = await self.db.execute(
            "get_receipts_since",
            f"SELECT {_COLUMNS} FROM receipts WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id",
            from_id, to_id,
        )
        return [_receipt(r) for r in rows]
