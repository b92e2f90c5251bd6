"""Account data (global and per room, including room tags as `m.tag`) and the `account_data`
stream of changes to it.

Each (user, room, type) has one row holding its current content; every write moves the row to
a new stream position, so the rows with positions in (from, to] are what changed in between.
Global account data uses the room id ''.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator

GLOBAL = ""
TAG_TYPE = "m.tag"


@dataclass(frozen=True)
class AccountDataRow:
    stream_id: int
    user_id: str
    room_id: str  # '' for global account data
    type: str
    content: dict[str, Any]


@dataclass
class AccountDataSet:
    """A user's account data: global by type, and per room by type."""

    global_data: dict[str, dict[str, Any]]
    rooms: dict[str, dict[str, dict[str, Any]]]


def _encode(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def _as_set(rows: Iterable[tuple[str, str, str]]) -> AccountDataSet:
    result = AccountDataSet({}, {})
    for room_id, data_type, content in rows:
        if room_id == GLOBAL:
            result.global_data[data_type] = json.loads(content)
        else:
            result.rooms.setdefault(room_id, {})[data_type] = json.loads(content)
    return result


class AccountDataStore:
    def __init__(self, db: Database, stream_ids: StreamIdGenerator):
        self.db = db
        self.stream_ids = stream_ids

    def _upsert_txn(self, txn: Txn, user_id: str, room_id: str, data_type: str, content: dict[str, Any]) -> int:
        stream_id = self.stream_ids.get_next_txn(txn, (user_id,))
        txn.execute(
            "INSERT INTO account_data (user_id, room_id, account_data_type, content, stream_id, instance_name)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, room_id, account_data_type) DO UPDATE SET content = excluded.content,"
            " stream_id = excluded.stream_id, instance_name = excluded.instance_name",
            (user_id, room_id, data_type, _encode(content), stream_id, self.stream_ids.instance_name),
        )
        return stream_id

    async def set_account_data(self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]) -> int:
        """Replace one piece of account data (room_id '' for global); returns its position."""
        return await self.db.run_interaction(
            "set_account_data", self._upsert_txn, user_id, room_id, data_type, content
        )

    async def update_tag(self, user_id: str, room_id: str, tag: str, tag_content: dict[str, Any] | None) -> int | None:
        """Add or replace (`tag_content`) or remove (None) one tag of the room's `m.tag`;
        returns the new position, or None when removing a tag that was not there."""

        def txn_fn(txn: Txn) -> int | None:
            txn.execute(
                "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND account_data_type = ?",
                (user_id, room_id, TAG_TYPE),
            )
            row = txn.fetchone()
            content = json.loads(row[0]) if row else {}
            tags = content.get("tags")
            tags = dict(tags) if isinstance(tags, dict) else {}
            if tag_content is None:
                if tag not in tags:
                    return None
                del tags[tag]
            else:
                tags[tag] = tag_content
            return self._upsert_txn(txn, user_id, room_id, TAG_TYPE, {**content, "tags": tags})

        return await self.db.run_interaction("update_tag", txn_fn)

    async def get_account_data(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
        rows = await self.db.execute(
            "get_account_data",
            "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND account_data_type = ?",
            user_id, room_id, data_type,
        )
        return json.loads(rows[0][0]) if rows else None  # type: ignore[no-any-return]

    async def get_all_for_user(self, user_id: str, to_id: int) -> AccountDataSet:
        """All of the user's account data as of position `to_id`."""
        rows = await self.db.execute(
            "get_account_data_for_user",
            "SELECT room_id, account_data_type, content FROM account_data WHERE user_id = ? AND stream_id <= ?",
            user_id, to_id,
        )
        return _as_set(rows)

    async def get_changed_for_user(
        self, user_id: str, from_id: int, to_id: int, full_room_ids: Iterable[str] = (),
    ) -> AccountDataSet:
        """What changed for the user in (from_id, to_id], plus everything up to `to_id` of the
        rooms in `full_room_ids` (rooms the user just joined)."""
        full = list(full_room_ids)
        extra = ""
        if full:
            extra = f" OR (room_id IN ({', '.join('?' for _ in full)}) AND stream_id <= ?)"
        rows = await self.db.execute(
            "get_account_data_changes_for_user",
            "SELECT room_id, account_data_type, content FROM account_data WHERE user_id = ?"
            f" AND ((stream_id > ? AND stream_id <= ?){extra})",
            user_id, from_id, to_id, *full, *([to_id] if full else []),
        )
        return _as_set(rows)

    async def get_updates_since(self, from_id: int, to_id: int) -> list[AccountDataRow]:
        """Every change with a position in (from_id, to_id], in order, for catch-up."""
        rows = await self.db.execute(
            "get_account_data_updates",
            "SELECT stream_id, user_id, room_id, account_data_type, content FROM account_data"
            " WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id",
            from_id, to_id,
        )
        return [AccountDataRow(int(s), u, r, t, json.loads(c)) for s, u, r, t, c in rows]
