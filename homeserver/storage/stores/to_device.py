"""To-device messages: the `to_device` stream (`to_device_sends`, one row per request, which
also makes requests idempotent) and each device's inbox (`device_inbox`)."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.util.clock import now_ms


@dataclass(frozen=True)
class ToDeviceMessage:
    stream_id: int
    sender: str
    type: str
    content: dict[str, Any]


class ToDeviceStore:
    def __init__(self, db: Database, stream_ids: StreamIdGenerator):
        self.db = db
        self.stream_ids = stream_ids

    async def add_messages(
        self, sender: str, scope: str, txn_id: str, message_type: str,
        messages: Iterable[tuple[str, str, dict[str, Any]]],
    ) -> int | None:
        """Queue (user_id, device_id, content) messages under one new stream position; None
        when (sender, scope, txn_id) was already sent, in which case nothing is queued."""
        rows = list(messages)

        def txn_fn(txn: Txn) -> int | None:
            txn.execute(
                "SELECT 1 FROM to_device_sends WHERE sender = ? AND scope = ? AND txn_id = ?",
                (sender, scope, txn_id),
            )
            if txn.fetchone():
                return None
            stream_id = self.stream_ids.get_next_txn(txn, {user_id for user_id, _, _ in rows})
            instance = self.stream_ids.instance_name
            txn.execute(
                "INSERT INTO to_device_sends (stream_id, instance_name, sender, scope, txn_id, inserted_ts)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sender, scope, txn_id) DO NOTHING",
                (stream_id, instance, sender, scope, txn_id, now_ms()),
            )
            if txn.rowcount == 0:
                return None  # a concurrent retry of the same request got there first
            txn.execute_many(
                "INSERT INTO device_inbox (stream_id, instance_name, user_id, device_id, sender, message_type, content)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(stream_id, instance, u, d, sender, message_type, json.dumps(c)) for u, d, c in rows],
            )
            return stream_id

        return await self.db.run_interaction("add_to_device_messages", txn_fn)

    async def get_messages_for_device(
        self, user_id: str, device_id: str, after: int, upto: int, limit: int,
    ) -> list[ToDeviceMessage]:
        """The device's messages with stream id in (after, upto], oldest first."""
        rows = await self.db.execute(
            "get_messages_for_device",
            "SELECT stream_id, sender, message_type, content FROM device_inbox"
            " WHERE user_id = ? AND device_id = ? AND stream_id > ? AND stream_id <= ?"
            " ORDER BY stream_id LIMIT ?",
            user_id, device_id, after, upto, limit,
        )
        return [ToDeviceMessage(int(s), sender, t, json.loads(c)) for s, sender, t, c in rows]

    async def delete_messages_for_device(self, user_id: str, device_id: str, upto: int) -> int:
        """Drop the messages a sync has acknowledged (stream id <= `upto`); returns how many."""

        def txn_fn(txn: Txn) -> int:
            txn.execute(
                "DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?",
                (user_id, device_id, upto),
            )
            return txn.rowcount

        return await self.db.run_interaction("delete_to_device_messages", txn_fn)

    async def delete_all_for_devices(self, user_id: str, device_ids: list[str]) -> None:
        """A deleted device's inbox goes with it."""
        await self.db.run_interaction(
            "delete_device_inbox",
            lambda txn: txn.execute_many(
                "DELETE FROM device_inbox WHERE user_id = ? AND device_id = ?", [(user_id, d) for d in device_ids]
            ),
        )

    async def get_recipients_since(self, from_id: int, to_id: int) -> list[tuple[int, str, str]]:
        """(stream_id, user_id, device_id) of undelivered messages in (from_id, to_id], for a
        process catching up on the stream (delivered messages need no wake-up)."""
        rows = await self.db.execute(
            "get_to_device_recipients_since",
            "SELECT stream_id, user_id, device_id FROM device_inbox WHERE stream_id > ? AND stream_id <= ?"
            " ORDER BY stream_id",
            from_id, to_id,
        )
        return [(int(s), u, d) for s, u, d in rows]

    async def prune(self, sends_older_than_ms: int) -> int:
        """Housekeeping: forget send transaction ids older than `sends_older_than_ms` and drop
        messages waiting for devices that no longer exist; returns how many rows went."""

        def txn_fn(txn: Txn) -> int:
            txn.execute("DELETE FROM to_device_sends WHERE inserted_ts < ?", (now_ms() - sends_older_than_ms,))
            removed = txn.rowcount
            txn.execute(
                "DELETE FROM device_inbox WHERE NOT EXISTS (SELECT 1 FROM devices AS d"
                " WHERE d.user_id = device_inbox.user_id AND d.device_id = device_inbox.device_id)"
            )
            return removed + txn.rowcount

        return await self.db.run_interaction("prune_to_device", txn_fn)
