"""Push actions (`event_push_actions`): for each event and local user whose push rules made
it notify or highlight, the actions and the thread it belongs to. Unread notification counts
and the `/notifications` list are read from here."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.util.clock import now_ms

# Rooms per counting query: two parameters each, below SQLite's oldest variable limit (999).
_ROOMS_PER_QUERY = 400


@dataclass(frozen=True)
class PushActionRow:
    user_id: str
    room_id: str
    event_id: str
    stream_ordering: int
    actions: list[Any]
    notify: bool
    highlight: bool
    thread_id: str
    received_ts: int


@dataclass(frozen=True)
class UnreadCount:
    room_id: str
    thread_id: str
    notifications: int
    highlights: int


class EventPushActionsStore:
    def __init__(self, db: Database):
        self.db = db

    async def add_push_actions(self, rows: list[PushActionRow]) -> None:
        """Store the push actions of a batch of events in one statement."""
        if not rows:
            return

        def txn_fn(txn: Txn) -> None:
            txn.execute_many(
                "INSERT INTO event_push_actions (user_id, room_id, event_id, stream_ordering, actions, notify, highlight,"
                " thread_id, received_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, event_id) DO NOTHING",
                [
                    (r.user_id, r.room_id, r.event_id, r.stream_ordering, json.dumps(r.actions, separators=(",", ":")),
                     int(r.notify), int(r.highlight), r.thread_id, r.received_ts)
                    for r in rows
                ],
            )

        await self.db.run_interaction("add_push_actions", txn_fn)

    async def get_unread_counts(self, user_id: str, read_up_to: dict[str, int], upto: int) -> list[UnreadCount]:
        """Per (room, thread): the push actions after the room's position in `read_up_to`
        and at or before `upto`. Rooms and threads with nothing unread are left out."""
        rooms = list(read_up_to.items())
        return await self.db.run_interaction("get_unread_counts", self._unread_counts_txn, user_id, rooms, upto)

    def _unread_counts_txn(self, txn: Txn, user_id: str, rooms: list[tuple[str, int]], upto: int) -> list[UnreadCount]:
        result: list[UnreadCount] = []
        for start in range(0, len(rooms), _ROOMS_PER_QUERY):
            chunk = rooms[start:start + _ROOMS_PER_QUERY]
            values = ", ".join("(?, ?)" for _ in chunk)
            txn.execute(
                f"WITH bounds (room_id, read_up_to) AS (VALUES {values})"
                " SELECT a.room_id, a.thread_id, SUM(a.notify), SUM(a.highlight) FROM event_push_actions AS a"
                " JOIN bounds AS b ON b.room_id = a.room_id AND a.stream_ordering > b.read_up_to"
                " WHERE a.user_id = ? AND a.stream_ordering <= ? GROUP BY a.room_id, a.thread_id",
                [arg for pair in chunk for arg in pair] + [user_id, upto],
            )
            result += [UnreadCount(r, t, int(n or 0), int(h or 0)) for r, t, n, h in txn.fetchall()]
        return result

    async def get_notifications(
        self, user_id: str, before: int | None, limit: int, only_highlight: bool,
    ) -> list[PushActionRow]:
        """The user's push actions that notify, newest first, below stream ordering `before`."""
        clauses = ["user_id = ?", "notify = 1"]
        args: list[Any] = [user_id]
        if before is not None:
            clauses.append("stream_ordering < ?")
            args.append(before)
        if only_highlight:
            clauses.append("highlight = 1")
        rows = await self.db.execute(
            "get_notifications",
            "SELECT user_id, room_id, event_id, stream_ordering, actions, notify, highlight, thread_id, received_ts"
            f" FROM event_push_actions WHERE {' AND '.join(clauses)} ORDER BY stream_ordering DESC LIMIT ?",
            *args, limit,
        )
        return [_row(r) for r in rows]

    async def prune(self, older_than_ms: int) -> int:
        """Housekeeping: delete push actions (notifications) received more than
        `older_than_ms` ago; returns how many went."""

        def txn_fn(txn: Txn) -> int:
            txn.execute("DELETE FROM event_push_actions WHERE received_ts < ?", (now_ms() - older_than_ms,))
            return txn.rowcount

        return await self.db.run_interaction("prune_event_push_actions", txn_fn)


def _row(r: Iterable[Any]) -> PushActionRow:
    user_id, room_id, event_id, ordering, actions, notify, highlight, thread_id, received_ts = r
    return PushActionRow(user_id, room_id, event_id, int(ordering), json.loads(actions), bool(notify), bool(highlight),
                         thread_id, int(received_ts))
