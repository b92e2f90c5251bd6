"""Sync filters uploaded with `/user/{userId}/filter`, numbered per user."""

import json
from typing import Any

from homeserver.storage.database import Database, Txn


class FilterStore:
    def __init__(self, db: Database):
        self.db = db

    async def add_filter(self, user_id: str, definition: dict[str, Any]) -> int:
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"))

        def txn_fn(txn: Txn) -> int:
            txn.execute("SELECT filter_id FROM user_filters WHERE user_id = ? AND filter_json = ?", (user_id, text))
            row = txn.fetchone()
            if row:
                return int(row[0])
            txn.execute("SELECT COALESCE(MAX(filter_id), -1) + 1 FROM user_filters WHERE user_id = ?", (user_id,))
            filter_id = int(txn.fetchone()[0])
            txn.execute("INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)", (user_id, filter_id, text))
            return filter_id

        return await self.db.run_interaction("add_filter", txn_fn)

    async def get_filter(self, user_id: str, filter_id: int) -> dict[str, Any] | None:
        rows = await self.db.execute(
            "get_filter", "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?", user_id, filter_id
        )
        return json.loads(rows[0][0]) if rows else None
