"""End-to-end encryption keys: device keys, one-time and fallback keys, cross-signing keys and
their signatures, and the user-signature stream (`e2e_*` tables).

Writes that change what other users see of a user's keys also record a `device_lists` stream
row, through the device store (which owns that table), in the same transaction.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.caches import CacheInvalidationStore
from homeserver.storage.stores.devices import DeviceStore
from homeserver.util.caches import LruCache

# Rows per statement when a query lists many users or devices (SQLite's variable limit).
BATCH = 300
# The `caches` stream name of the per-device key counts every /sync reports.
KEY_COUNTS_CACHE = "e2e_key_counts"

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Signature:
    """A signature made with `signing_key_id` over a device or key of `target_user_id`."""

    signing_key_id: str
    target_user_id: str
    target_device_id: str
    signature: str


def _batches(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def _marks(count: int, width: int = 1) -> str:
    one = "?" if width == 1 else "(" + ", ".join("?" * width) + ")"
    return ", ".join(one for _ in range(count))


def _add_signature(target: JsonDict, signer: str, key_id: str, signature: str) -> None:
    target.setdefault("signatures", {}).setdefault(signer, {})[key_id] = signature


@dataclass(frozen=True)
class KeyCounts:
    """What every /sync tells a device about its own keys."""

    one_time: dict[str, int]
    unused_fallback_types: list[str]


def _device_key(user_id: str, device_id: str) -> str:
    return json.dumps([user_id, device_id])


class EndToEndKeyStore:
    def __init__(self, db: Database, devices: DeviceStore, caches: CacheInvalidationStore):
        self.db = db
        self.devices = devices
        self.caches = caches
        # Per device; every write of one-time or fallback keys invalidates it on every process.
        self._key_counts: LruCache[str, KeyCounts] = LruCache(KEY_COUNTS_CACHE, 50_000)
        # Bumped by every invalidation: a read that overlapped one does not fill the cache.
        self._key_counts_generation = 0
        caches.register(KEY_COUNTS_CACHE, self._forget_key_counts)

    def _forget_key_counts(self, keys: list[str]) -> None:
        self._key_counts_generation += 1
        for key in keys:
            self._key_counts.invalidate(key)

    def _key_counts_changed_txn(self, txn: Txn, devices: Iterable[tuple[str, str]]) -> None:
        keys = sorted({_device_key(u, d) for u, d in devices})
        if keys:
            self.caches.invalidate_txn(txn, KEY_COUNTS_CACHE, keys)

    async def get_key_counts(self, user_id: str, device_id: str) -> KeyCounts:
        """The device's one-time key count per algorithm and its unused fallback key types."""
        key = _device_key(user_id, device_id)
        cached = self._key_counts.get(key)
        if cached is not None:
            return cached
        generation = self._key_counts_generation
        counts = await self.db.run_interaction("get_key_counts", self._key_counts_txn, user_id, device_id)
        if generation == self._key_counts_generation:
            self._key_counts.set(key, counts)
        return counts

    def _key_counts_txn(self, txn: Txn, user_id: str, device_id: str) -> KeyCounts:
        txn.execute(
            "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? GROUP BY algorithm",
            (user_id, device_id),
        )
        one_time = {algorithm: int(count) for algorithm, count in txn.fetchall()}
        txn.execute(
            "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND used = 0 ORDER BY algorithm",
            (user_id, device_id),
        )
        return KeyCounts(one_time, [r[0] for r in txn.fetchall()])

    # --- device keys -------------------------------------------------------------------------

    async def set_device_keys(self, user_id: str, device_id: str, keys: JsonDict, ts: int) -> bool:
        """Store the device's identity keys; True (and a device list change) when they changed."""
        new_json = json.dumps(keys, sort_keys=True, separators=(",", ":"))

        def txn_fn(txn: Txn) -> bool:
            txn.execute("SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            row = txn.fetchone()
            if row and row[0] == new_json:
                return False
            txn.execute(
                "INSERT INTO e2e_device_keys (user_id, device_id, ts_added_ms, key_json) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user_id, device_id) DO UPDATE SET ts_added_ms = excluded.ts_added_ms,"
                " key_json = excluded.key_json",
                (user_id, device_id, ts, new_json),
            )
            self.devices.record_change_txn(txn, user_id, [device_id])
            return True

        return await self.db.run_interaction("set_device_keys", txn_fn)

    async def get_device_keys(self, query: list[tuple[str, str | None]]) -> dict[str, dict[str, JsonDict]]:
        """user -> device -> uploaded keys, with the owner's cross-signatures merged in and the
        device's display name in `unsigned`. A None device id asks for every device."""
        whole_users = sorted({u for u, d in query if d is None})
        pairs = sorted({(u, d) for u, d in query if d is not None and u not in whole_users})
        select = (
            "SELECT k.user_id, k.device_id, d.display_name, k.key_json FROM e2e_device_keys AS k"
            " JOIN devices AS d ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE "
        )

        def txn_fn(txn: Txn) -> list[Any]:
            rows: list[Any] = []
            for batch in _batches(whole_users):
                txn.execute(select + f"k.user_id IN ({_marks(len(batch))})", batch)
                rows += txn.fetchall()
            for batch in _batches(pairs):
                txn.execute(select + f"(k.user_id, k.device_id) IN (VALUES {_marks(len(batch), 2)})",
                            [v for pair in batch for v in pair])
                rows += txn.fetchall()
            return rows

        result: dict[str, dict[str, JsonDict]] = {}
        for user_id, device_id, display_name, key_json in await self.db.run_interaction("get_device_keys", txn_fn):
            keys = json.loads(key_json)
            keys["unsigned"] = {"device_display_name": display_name} if display_name is not None else {}
            result.setdefault(user_id, {})[device_id] = keys
        for sig in await self._get_signatures(list(result), by_owner=True):
            device = result.get(sig.target_user_id, {}).get(sig.target_device_id)
            if device is not None:
                _add_signature(device, sig.target_user_id, sig.signing_key_id, sig.signature)
        return result

    async def delete_keys_for_devices(self, user_id: str, device_ids: list[str]) -> None:
        """A deleted device's identity, one-time and fallback keys go with it."""

        def txn_fn(txn: Txn) -> None:
            args = [(user_id, d) for d in device_ids]
            for table in ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys"):
                txn.execute_many(f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?", args)
            self._key_counts_changed_txn(txn, args)

        await self.db.run_interaction("delete_keys_for_devices", txn_fn)

    # --- one-time and fallback keys ------------------------------------------------------------

    async def get_one_time_keys(self, user_id: str, device_id: str, key_ids: list[tuple[str, str]]) -> dict[tuple[str, str], JsonDict | str]:
        """(algorithm, key_id) -> stored key, for those of `key_ids` already uploaded."""
        found: dict[tuple[str, str], JsonDict | str] = {}
        for batch in _batches(key_ids):
            rows = await self.db.execute(
                "get_one_time_keys",
                "SELECT algorithm, key_id, key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
                f" AND (algorithm, key_id) IN (VALUES {_marks(len(batch), 2)})",
                user_id, device_id, *[v for pair in batch for v in pair],
            )
            found.update({(a, k): json.loads(j) for a, k, j in rows})
        return found

    async def add_one_time_keys(self, user_id: str, device_id: str, keys: list[tuple[str, str, Any]], ts: int) -> None:
        """Insert (algorithm, key_id, key) rows; a key id uploaded twice is kept once."""
        rows = [(user_id, device_id, a, k, ts, json.dumps(v, sort_keys=True)) for a, k, v in keys]

        def txn_fn(txn: Txn) -> None:
            txn.execute_many(
                "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, ts_added_ms, key_json)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING",
                rows,
            )
            self._key_counts_changed_txn(txn, [(user_id, device_id)])

        await self.db.run_interaction("add_one_time_keys", txn_fn)


    async def set_fallback_keys(self, user_id: str, device_id: str, keys: list[tuple[str, str, Any]]) -> None:
        """Replace the device's fallback key of each algorithm; re-uploading the current key
        leaves its `used` flag alone."""

        def txn_fn(txn: Txn) -> None:
            for algorithm, key_id, key in keys:
                key_json = json.dumps(key, sort_keys=True)
                txn.execute(
                    "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?",
                    (user_id, device_id, algorithm),
                )
                if txn.fetchone() == (key_id, key_json):
                    continue
                txn.execute(
                    "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)"
                    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET"
                    " key_id = excluded.key_id, key_json = excluded.key_json, used = 0",
                    (user_id, device_id, algorithm, key_id, key_json),
                )
                self._key_counts_changed_txn(txn, [(user_id, device_id)])

        await self.db.run_interaction("set_fallback_keys", txn_fn)


    async def claim_keys(self, query: list[tuple[str, str, str]]) -> dict[str, dict[str, dict[str, Any]]]:
        """For each (user, device, algorithm): take (delete) the oldest one-time key, or else
        hand out the fallback key and mark it used. user -> device -> {"alg:key_id": key}."""
        wanted = sorted(set(query))

        def txn_fn(txn: Txn) -> dict[str, dict[str, dict[str, Any]]]:
            claimed: dict[str, dict[str, dict[str, Any]]] = {}
            for batch in _batches(wanted):
                taken = self._take_one_time_keys_txn(txn, batch)
                missing = [q for q in batch if q not in taken]
                taken.update(self._use_fallback_keys_txn(txn, missing))
                for (user_id, device_id, algorithm), (key_id, key) in taken.items():
                    claimed.setdefault(user_id, {}).setdefault(device_id, {})[f"{algorithm}:{key_id}"] = key
            self._key_counts_changed_txn(txn, [(u, d) for u, devices in claimed.items() for d in devices])
            return claimed

        return await self.db.run_interaction("claim_keys", txn_fn)

    def _take_one_time_keys_txn(self, txn: Txn, batch: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple[str, Any]]:
        txn.execute(
            "SELECT user_id, device_id, algorithm, key_id, key_json FROM ("
            " SELECT user_id, device_id, algorithm, key_id, key_json, ROW_NUMBER() OVER ("
            "  PARTITION BY user_id, device_id, algorithm ORDER BY ts_added_ms, key_id) AS position"
            " FROM e2e_one_time_keys"
            f" WHERE (user_id, device_id, algorithm) IN (VALUES {_marks(len(batch), 3)})"
            ") AS ranked WHERE position = 1",
            [v for item in batch for v in item],
        )
        rows = txn.fetchall()
        txn.execute_many(
            "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
            [(u, d, a, k) for u, d, a, k, _ in rows],
        )
        return {(u, d, a): (k, json.loads(j)) for u, d, a, k, j in rows}

    def _use_fallback_keys_txn(self, txn: Txn, missing: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple[str, Any]]:
        if not missing:
            return {}
        txn.execute(
            "SELECT user_id, device_id, algorithm, key_id, key_json FROM e2e_fallback_keys"
            f" WHERE (user_id, device_id, algorithm) IN (VALUES {_marks(len(missing), 3)})",
            [v for item in missing for v in item],
        )
        rows = txn.fetchall()
        txn.execute_many(
            "UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ? AND used = 0",
            [(u, d, a) for u, d, a, _, _ in rows],
        )
        return {(u, d, a): (k, json.loads(j)) for u, d, a, k, j in rows}

    # --- cross-signing keys ----------------------------------------------------------------------

    async def get_cross_signing_keys(self, user_ids: list[str], from_user_id: str | None = None) -> dict[str, dict[str, JsonDict]]:
        """user -> keytype -> key, with the signatures `from_user_id` made on them merged in."""
        result: dict[str, dict[str, JsonDict]] = {}
        for batch in _batches(sorted(set(user_ids))):
            rows = await self.db.execute(
                "get_cross_signing_keys",
                f"SELECT user_id, keytype, key_json FROM e2e_cross_signing_keys WHERE user_id IN ({_marks(len(batch))})",
                *batch,
            )
            for user_id, keytype, key_json in rows:
                result.setdefault(user_id, {})[keytype] = json.loads(key_json)
        if from_user_id is not None and result:
            by_pubkey = {
                (user_id, _public_key(key)): key for user_id, keys in result.items() for key in keys.values()
            }
            for sig in await self._get_signatures(list(result), signer=from_user_id):
                key = by_pubkey.get((sig.target_user_id, sig.target_device_id))
                if key is not None:
                    _add_signature(key, from_user_id, sig.signing_key_id, sig.signature)
        return result

    async def set_cross_signing_keys(self, user_id: str, keys: dict[str, JsonDict]) -> None:
        """Replace the given key types (master, self_signing, user_signing) of the user, and
        record a device list change named after each new public key."""

        def txn_fn(txn: Txn) -> None:
            stream_id = self.devices.stream_ids.get_next_txn(txn)
            for keytype, key in keys.items():
                txn.execute(
                    "INSERT INTO e2e_cross_signing_keys (user_id, keytype, key_json, stream_id) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (user_id, keytype) DO UPDATE SET key_json = excluded.key_json, stream_id = excluded.stream_id",
                    (user_id, keytype, json.dumps(key, sort_keys=True), stream_id),
                )
            if "user_signing" in keys:
                self._record_user_signatures_txn(txn, user_id, [user_id])
            self.devices.record_change_txn(txn, user_id, [_public_key(k) for k in keys.values()])

        await self.db.run_interaction("set_cross_signing_keys", txn_fn)

    # --- signatures --------------------------------------------------------------------------------

    async def store_signatures(self, signer: str, signatures: list[Signature]) -> None:
        """Store signatures made by `signer`. Signatures of the signer's own devices and keys
        are a device list change of the signer; signatures of other users' keys are recorded
        on the user-signature stream, seen only by the signer."""
        own = sorted({s.target_device_id for s in signatures if s.target_user_id == signer})
        others = sorted({s.target_user_id for s in signatures if s.target_user_id != signer})
        # Signing other users changes nothing of the signer's devices; the change is named
        # after the signing key (the user-signing key's public key).
        signing_keys = sorted({s.signing_key_id.partition(":")[2] for s in signatures if s.target_user_id != signer})

        def txn_fn(txn: Txn) -> None:
            txn.execute_many(
                "INSERT INTO e2e_cross_signing_signatures (user_id, key_id, target_user_id, target_device_id, signature)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (target_user_id, target_device_id, user_id, key_id)"
                " DO UPDATE SET signature = excluded.signature",
                [(signer, s.signing_key_id, s.target_user_id, s.target_device_id, s.signature) for s in signatures],
            )
            if others:
                self._record_user_signatures_txn(txn, signer, others)
            # device_lists_stream must hold the highest position allocated (a restarted
            # SQLite process resumes from its maximum), so its rows are written last.
            self.devices.record_change_txn(txn, signer, own + signing_keys)

        if signatures:
            await self.db.run_interaction("store_signatures", txn_fn)

    def _record_user_signatures_txn(self, txn: Txn, signer: str, targets: list[str]) -> None:
        stream_ids = self.devices.stream_ids
        txn.execute_many(
            "INSERT INTO e2e_user_signature_stream (stream_id, instance_name, from_user_id, target_user_id)"
            " VALUES (?, ?, ?, ?)",
            [(stream_ids.get_next_txn(txn), stream_ids.instance_name, signer, t) for t in targets],
        )

    async def get_users_whose_signatures_changed(self, user_id: str, from_id: int, to_id: int) -> set[str]:
        """Users that `user_id` signed (or whose user-signing key changed) in (from_id, to_id]."""
        rows = await self.db.execute(
            "get_users_whose_signatures_changed",
            "SELECT DISTINCT target_user_id FROM e2e_user_signature_stream"
            " WHERE from_user_id = ? AND stream_id > ? AND stream_id <= ?",
            user_id, from_id, to_id,
        )
        return {r[0] for r in rows}

    async def get_user_signature_changes_since(self, from_id: int, to_id: int) -> list[tuple[int, str, str]]:
        """(stream_id, signer, target) rows in (from_id, to_id], for a process catching up."""
        rows = await self.db.execute(
            "get_user_signature_changes_since",
            "SELECT stream_id, from_user_id, target_user_id FROM e2e_user_signature_stream"
            " WHERE stream_id > ? AND stream_id <= ? ORDER BY stream_id",
            from_id, to_id,
        )
        return [(int(s), f, t) for s, f, t in rows]

    async def _get_signatures(self, target_users: list[str], *, signer: str | None = None, by_owner: bool = False) -> list[Signature]:
        """Stored signatures over keys of `target_users`: those made by `signer`, or (with
        `by_owner`) those each user made on their own devices."""
        found: list[Signature] = []
        for batch in _batches(sorted(target_users)):
            condition = "user_id = target_user_id" if by_owner else "user_id = ?"
            rows = await self.db.execute(
                "get_cross_signing_signatures",
                "SELECT key_id, target_user_id, target_device_id, signature FROM e2e_cross_signing_signatures"
                f" WHERE {condition} AND target_user_id IN ({_marks(len(batch))})",
                *([] if by_owner else [signer]), *batch,
            )
            found += [Signature(*row) for row in rows]
        return found


def _public_key(key: JsonDict) -> str:
    """The public key of a cross-signing key (its only entry in `keys`)."""
    return str(next(iter(key["keys"].values())))
