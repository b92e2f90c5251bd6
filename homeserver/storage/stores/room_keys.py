"""Server-side key backups: backup versions (`e2e_room_keys_versions`) and the session keys
stored in them (`e2e_room_keys`). Versions are integers per user, never reused; a deleted
version keeps its row (marked deleted) so that its number is not handed out again."""

import json
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Txn


@dataclass(frozen=True)
class BackupVersion:
    version: int
    algorithm: str
    auth_data: Any
    etag: int


@dataclass(frozen=True)
class RoomKey:
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "first_message_index": self.first_message_index,
            "forwarded_count": self.forwarded_count,
            "is_verified": self.is_verified,
            "session_data": self.session_data,
        }


# room_id -> session_id -> key
RoomKeys = dict[str, dict[str, RoomKey]]


class RoomKeysStore:
    def __init__(self, db: Database):
        self.db = db

    async def create_version(self, user_id: str, algorithm: str, auth_data: Any) -> int:
        def txn_fn(txn: Txn) -> int:
            txn.execute("SELECT COALESCE(MAX(version), 0) FROM e2e_room_keys_versions WHERE user_id = ?", (user_id,))
            version = int(txn.fetchone()[0]) + 1
            txn.execute(
                "INSERT INTO e2e_room_keys_versions (user_id, version, algorithm, auth_data, etag, deleted)"
                " VALUES (?, ?, ?, ?, 0, 0)",
                (user_id, version, algorithm, json.dumps(auth_data)),
            )
            return version

        return await self.db.run_interaction("create_room_keys_version", txn_fn)

    async def get_version(self, user_id: str, version: int | None = None) -> BackupVersion | None:
        """A live (not deleted) version, or the newest live one when `version` is None."""
        if version is None:
            rows = await self.db.execute(
                "get_current_room_keys_version",
                "SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions"
                " WHERE user_id = ? AND deleted = 0 ORDER BY version DESC LIMIT 1",
                user_id,
            )
        else:
            rows = await self.db.execute(
                "get_room_keys_version",
                "SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions"
                " WHERE user_id = ? AND version = ? AND deleted = 0",
                user_id, version,
            )
        if not rows:
            return None
        number, algorithm, auth_data, etag = rows[0]
        return BackupVersion(int(number), algorithm, json.loads(auth_data), int(etag))

    async def update_auth_data(self, user_id: str, version: int, auth_data: Any) -> None:
        await self.db.execute(
            "update_room_keys_version",
            "UPDATE e2e_room_keys_versions SET auth_data = ? WHERE user_id = ? AND version = ? AND deleted = 0",
            json.dumps(auth_data), user_id, version,
        )

    async def delete_version(self, user_id: str, version: int) -> bool:
        """Mark the version deleted and drop its keys; False when it never existed."""

        def txn_fn(txn: Txn) -> bool:
            txn.execute("UPDATE e2e_room_keys_versions SET deleted = 1 WHERE user_id = ? AND version = ?", (user_id, version))
            if txn.rowcount == 0:
                return False
            txn.execute("DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?", (user_id, version))
            return True

        return await self.db.run_interaction("delete_room_keys_version", txn_fn)

    async def get_keys(self, user_id: str, version: int, room_id: str | None = None, session_id: str | None = None) -> RoomKeys:
        sql = (
            "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data"
            " FROM e2e_room_keys WHERE user_id = ? AND version = ?"
        )
        args: list[Any] = [user_id, version]
        if room_id is not None:
            sql += " AND room_id = ?"
            args.append(room_id)
            if session_id is not None:
                sql += " AND session_id = ?"
                args.append(session_id)
        rows = await self.db.execute("get_room_keys", sql, *args)
        return _to_room_keys(rows)

    async def get_keys_for_sessions(self, user_id: str, version: int, sessions: list[tuple[str, str]]) -> RoomKeys:
        """The stored keys of the given (room_id, session_id) pairs."""
        found: RoomKeys = {}
        for start in range(0, len(sessions), 300):
            batch = sessions[start:start + 300]
            rows = await self.db.execute(
                "get_room_keys_for_sessions",
                "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data"
                " FROM e2e_room_keys WHERE user_id = ? AND version = ?"
                f" AND (room_id, session_id) IN (VALUES {', '.join('(?, ?)' for _ in batch)})",
                user_id, version, *[v for pair in batch for v in pair],
            )
            for room_id, sessions_of_room in _to_room_keys(rows).items():
                found.setdefault(room_id, {}).update(sessions_of_room)
        return found

    async def put_keys(self, user_id: str, version: int, keys: RoomKeys) -> tuple[int, int]:
        """Insert or replace the keys and, if there were any, move the etag on.
        Returns (etag, number of keys in the version)."""

        def txn_fn(txn: Txn) -> tuple[int, int]:
            rows = [
                (user_id, version, room_id, session_id, k.first_message_index, k.forwarded_count,
                 int(k.is_verified), json.dumps(k.session_data))
                for room_id, sessions in keys.items() for session_id, k in sessions.items()
            ]
            txn.execute_many(
                "INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index,"
                " forwarded_count, is_verified, session_data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
                " first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,"
                " is_verified = excluded.is_verified, session_data = excluded.session_data",
                rows,
            )
            return self._bump_etag_txn(txn, user_id, version, bool(rows))

        return await self.db.run_interaction("put_room_keys", txn_fn)

    async def delete_keys(self, user_id: str, version: int, room_id: str | None = None, session_id: str | None = None) -> tuple[int, int]:
        """Delete keys of the version (all, one room's, or one session's); the etag moves on.
        Returns (etag, number of keys left)."""
        sql = "DELETE FROM e2e_room_keys WHERE user_id = ? AND version = ?"
        args: list[Any] = [user_id, version]
        if room_id is not None:
            sql += " AND room_id = ?"
            args.append(room_id)
            if session_id is not None:
                sql += " AND session_id = ?"
                args.append(session_id)

        def txn_fn(txn: Txn) -> tuple[int, int]:
            txn.execute(sql, args)
            return self._bump_etag_txn(txn, user_id, version, True)

        return await self.db.run_interaction("delete_room_keys", txn_fn)

    async def count_keys(self, user_id: str, version: int) -> int:
        rows = await self.db.execute(
            "count_room_keys", "SELECT COUNT(*) FROM e2e_room_keys WHERE user_id = ? AND version = ?", user_id, version
        )
        return int(rows[0][0])

    def _bump_etag_txn(self, txn: Txn, user_id: str, version: int, changed: bool) -> tuple[int, int]:
        if changed:
            txn.execute(
                "UPDATE e2e_room_keys_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?", (user_id, version)
            )
        txn.execute("SELECT etag FROM e2e_room_keys_versions WHERE user_id = ? AND version = ?", (user_id, version))
        etag = int(txn.fetchone()[0])
        txn.execute("SELECT COUNT(*) FROM e2e_room_keys WHERE user_id = ? AND version = ?", (user_id, version))
        return etag, int(txn.fetchone()[0])


def _to_room_keys(rows: list[Any]) -> RoomKeys:
    result: RoomKeys = {}
    for room_id, session_id, first_index, forwarded, verified, data in rows:
        result.setdefault(room_id, {})[session_id] = RoomKey(int(first_index), int(forwarded), bool(verified), json.loads(data))
    return result
