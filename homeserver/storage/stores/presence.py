"""Presence: the `presence_stream` table, one row per user holding their latest presence, and
the `presence` stream of changes to it (a change moves the row to a new position)."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.events import in_list

OFFLINE = "offline"
_CHUNK = 500
_COLUMNS = "user_id, state, status_msg, last_active_ts, last_user_sync_ts, currently_active, stream_id"


@dataclass(frozen=True)
class UserPresence:
    user_id: str
    state: str = OFFLINE
    status_msg: str | None = None
    last_active_ts: int = 0
    last_user_sync_ts: int = 0
    currently_active: bool = False
    # The position of the last change others were told about (0: never).
    stream_id: int = 0

    def copy_and_replace(self, **changes: Any) -> "UserPresence":
        return replace(self, **changes)


def _presence(row: tuple[Any, ...]) -> UserPresence:
    user_id, state, status_msg, last_active, last_sync, active, stream_id = row
    return UserPresence(user_id, state, status_msg, int(last_active), int(last_sync), bool(active), int(stream_id))


class PresenceStore:
    def __init__(self, db: Database, stream_ids: StreamIdGenerator):
        self.db = db
        self.stream_ids = stream_ids

    async def update_presence(self, states: list[UserPresence]) -> list[UserPresence]:
        """Store changes that others must hear about: each row moves to a new stream
        position. Returns the states with their positions."""

        def txn_fn(txn: Txn) -> list[UserPresence]:
            stored = []
            for state in states:
                stream_id = self.stream_ids.get_next_txn(txn)
                txn.execute(
                    "INSERT INTO presence_stream (user_id, state, status_msg, last_active_ts, last_user_sync_ts,"
                    " currently_active, stream_id, instance_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, status_msg = excluded.status_msg,"
                    " last_active_ts = excluded.last_active_ts, last_user_sync_ts = excluded.last_user_sync_ts,"
                    " currently_active = excluded.currently_active, stream_id = excluded.stream_id,"
                    " instance_name = excluded.instance_name",
                    (state.user_id, state.state, state.status_msg, state.last_active_ts, state.last_user_sync_ts,
                     int(state.currently_active), stream_id, self.stream_ids.instance_name),
                )
                stored.append(state.copy_and_replace(stream_id=stream_id))
            return stored

        return await self.db.run_interaction("update_presence", txn_fn)

    async def update_timestamps(self, states: Iterable[UserPresence]) -> None:
        """Refresh the timers of stored rows in place (no new position: nothing others see)."""
        rows = [(s.last_active_ts, s.last_user_sync_ts, int(s.currently_active), s.user_id) for s in states]
        if not rows:
            return
        await self.db.run_interaction(
            "update_presence_timestamps",
            lambda txn: txn.execute_many(
                "UPDATE presence_stream SET last_active_ts = ?, last_user_sync_ts = ?, currently_active = ?"
                " WHERE user_id = ?",
                rows,
            ),
        )

    async def get_presence(self, user_ids: Iterable[str]) -> dict[str, UserPresence]:
        """The stored presence of each user that has a row."""
        wanted = sorted(set(user_ids))
        result: dict[str, UserPresence] = {}
        for start in range(0, len(wanted), _CHUNK):
            clause, args = in_list("user_id", wanted[start:start + _CHUNK])
            rows = await self.db.execute("get_presence", f"SELECT {_COLUMNS} FROM presence_stream WHERE {clause}", *args)
            result.update((row[0], _presence(row)) for row in rows)
        return result

    async def get_not_offline(self) -> list[UserPresence]:
        """Every user who is not offline (the presence writer's working set at start-up)."""
        rows = await self.db.execute(
            "get_presence_not_offline", f"SELECT {_COLUMNS} FROM presence_stream WHERE state <> ?", OFFLINE
        )
        return [_presence(r) for r in rows]

    async def get_presence_since(self, from_id: int, to_id: int) -> list[UserPresence]:
        """Every change with a position in (from_id, to_id], in order (one row per user, so
        at most one entry per user): for `/sync` and for a process catching up."""
        rows = await self.db.execute(
            "get_presence_since",
            f"SELECT {_COLUMNS} FROM presence_stream WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id",
            from_id, to_id,
        )
        return [_presence(r) for r in rows]
