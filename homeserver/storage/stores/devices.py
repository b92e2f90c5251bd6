"""Devices, and the `device_lists` stream of changes to them."""

from collections.abc import Iterable
from dataclasses import dataclass

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.registration import RegistrationStore


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None


class DeviceStore:
    def __init__(self, db: Database, stream_ids: StreamIdGenerator, registration: RegistrationStore | None = None):
        self.db = db
        self.stream_ids = stream_ids
        self.registration = registration

    def _record_change_txn(self, txn: Txn, user_id: str, device_ids: Iterable[str]) -> None:
        rows = [(self.stream_ids.get_next_txn(txn), self.stream_ids.instance_name, user_id, d) for d in device_ids]
        txn.execute_many(
            "INSERT INTO device_lists_stream (stream_id, instance_name, user_id, device_id) VALUES (?, ?, ?, ?)",
            rows,
        )

    def record_change_txn(self, txn: Txn, user_id: str, device_ids: Iterable[str]) -> None:
        """Record a change of the user's device list inside another store's transaction (the
        end-to-end key store does, when device or cross-signing keys change)."""
        self._record_change_txn(txn, user_id, device_ids)

    async def store_device(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        """Create the device if it does not exist; True when it was created."""

        def txn_fn(txn: Txn) -> bool:
            txn.execute("SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            if txn.fetchone():
                return False
            txn.execute(
                "INSERT INTO devices (user_id, device_id, display_name) VALUES (?, ?, ?)",
                (user_id, device_id, display_name),
            )
            self._record_change_txn(txn, user_id, [device_id])
            return True

        return await self.db.run_interaction("store_device", txn_fn)

    async def get_devices(self, user_id: str) -> list[Device]:
        rows = await self.db.execute(
            "get_devices",
            "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip FROM devices"
            " WHERE user_id = ? ORDER BY device_id",
            user_id,
        )
        return [Device(*row) for row in rows]

    async def get_device(self, user_id: str, device_id: str) -> Device | None:
        rows = await self.db.execute(
            "get_device",
            "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip FROM devices"
            " WHERE user_id = ? AND device_id = ?",
            user_id, device_id,
        )
        return Device(*rows[0]) if rows else None

    async def update_display_name(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        def txn_fn(txn: Txn) -> bool:
            txn.execute(
                "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                (display_name, user_id, device_id),
            )
            if txn.rowcount == 0:
                return False
            self._record_change_txn(txn, user_id, [device_id])
            return True

        return await self.db.run_interaction("update_device", txn_fn)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete devices and every access token bound to them, in one transaction."""

        def txn_fn(txn: Txn) -> None:
            txn.execute_many("DELETE FROM devices WHERE user_id = ? AND device_id = ?", [(user_id, d) for d in device_ids])
            txn.execute_many(
                "DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", [(user_id, d) for d in device_ids]
            )
            if self.registration is not None:
                self.registration.invalidate_user_tokens_txn(txn, user_id)
            self._record_change_txn(txn, user_id, device_ids)

        if device_ids:
            await self.db.run_interaction("delete_devices", txn_fn)

    async def update_last_seen(self, user_id: str, device_id: str, ts: int, ip: str, user_agent: str) -> None:
        await self.db.execute(
            "update_last_seen",
            "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?, last_seen_user_agent = ?"
            " WHERE user_id = ? AND device_id = ?",
            ts, ip, user_agent, user_id, device_id,
        )

    async def get_changes_since(self, from_id: int, to_id: int) -> list[tuple[int, str, str]]:
        """(stream_id, user_id, device_id) rows in (from_id, to_id], for catch-up."""
        rows = await self.db.execute(
            "get_device_list_changes",
            "SELECT stream_id, user_id, device_id FROM device_lists_stream"
            " WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id",
            from_id, to_id,
        )
        return [(int(s), u, d) for s, u, d in rows]
