"""The `caches` stream: invalidations of in-memory caches that other processes must hear of.

A write that makes a cached value stale records `(cache name, keys)` in `cache_invalidations`
inside its own transaction; this process drops the entries once the transaction commits, and
every other process drops them when replication brings it the row. Every process writes this
stream (each under its own instance name); readers start from the table's end at start-up,
since nothing was cached before then.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.util.clock import now_ms

Invalidator = Callable[[list[str]], None]


@dataclass(frozen=True)
class Invalidation:
    stream_id: int
    cache_name: str
    keys: list[str]


class CacheInvalidationStore:
    def __init__(self, db: Database, stream_ids: StreamIdGenerator):
        self.db = db
        self.stream_ids = stream_ids
        self._invalidators: dict[str, Invalidator] = {}
        # The end of the stream when this process started: older rows concern nothing cached here.
        self.start_position = 0

    def register(self, cache_name: str, invalidator: Invalidator) -> None:
        """`invalidator(keys)` drops the entries of `cache_name` for those keys."""
        self._invalidators[cache_name] = invalidator

    async def load(self) -> None:
        rows = await self.db.execute("caches_start", "SELECT COALESCE(MAX(stream_id), 0) FROM cache_invalidations")
        self.start_position = int(rows[0][0])

    def invalidate_txn(self, txn: Txn, cache_name: str, keys: list[str]) -> None:
        """Record an invalidation in `txn`; applied here once it commits."""
        stream_id = self.stream_ids.get_next_txn(txn)
        txn.execute(
            "INSERT INTO cache_invalidations (stream_id, instance_name, cache_name, keys, invalidation_ts)"
            " VALUES (?, ?, ?, ?, ?)",
            (stream_id, self.stream_ids.instance_name, cache_name, json.dumps(keys), now_ms()),
        )
        txn.call_after_commit(lambda: self.apply(cache_name, keys))

    def apply(self, cache_name: str, keys: list[str]) -> None:
        invalidator = self._invalidators.get(cache_name)
        if invalidator is not None:
            invalidator(keys)

    async def get_invalidations(self, instance: str, after: int, upto: int, limit: int) -> list[Invalidation]:
        rows = await self.db.execute(
            "get_cache_invalidations",
            "SELECT stream_id, cache_name, keys FROM cache_invalidations"
            " WHERE instance_name = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id LIMIT ?",
            instance, after, upto, limit,
        )
        return [Invalidation(int(stream_id), name, json.loads(keys)) for stream_id, name, keys in rows]

    async def prune(self, older_than_ms: int) -> int:
        """Delete invalidations older than `older_than_ms` ago; returns how many went."""

        def txn_fn(txn: Txn) -> int:
            txn.execute("DELETE FROM cache_invalidations WHERE invalidation_ts < ?", (now_ms() - older_than_ms,))
            return txn.rowcount

        return await self.db.run_interaction("prune_cache_invalidations", txn_fn)
