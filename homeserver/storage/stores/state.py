"""Room state: state groups stored as deltas on a previous group (a full snapshot every
`MAX_CHAIN_LENGTH` steps), the state after each event, and each room's current state."""

from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.storage.database import Database, Txn
from homeserver.storage.stores.events import in_list
from homeserver.util.caches import LruCache

StateKey = tuple[str, str]
StateMap = dict[StateKey, str]

# A delta chain longer than this is cut with a full snapshot, bounding reads.
MAX_CHAIN_LENGTH = 50


class StateStore:
    def __init__(self, db: Database):
        self.db = db
        self._group_cache: LruCache[int, Mapping[StateKey, str]] = LruCache("state_groups", 10_000)
        self._event_groups: LruCache[str, int] = LruCache("event_to_state_group", 100_000)
        self._next_group: int | None = None

    # --- reading ---------------------------------------------------------------------------

    async def get_state_groups_for_events(self, event_ids: Iterable[str]) -> dict[str, int]:
        """The state group after each event (an event's group never changes once persisted,
        so found ones are cached)."""
        result: dict[str, int] = {}
        missing = []
        for event_id in event_ids:
            group = self._event_groups.get(event_id)
            if group is None:
                missing.append(event_id)
            else:
                result[event_id] = group
        if not missing:
            return result
        clause, args = in_list("event_id", missing)
        rows = await self.db.execute(
            "get_state_groups_for_events", f"SELECT event_id, state_group FROM event_to_state_groups WHERE {clause}", *args
        )
        for event_id, group in rows:
            result[event_id] = int(group)
            self._event_groups.set(event_id, int(group))
        return result

    def prime_event_group(self, event_id: str, group: int) -> None:
        """Remember the group of an event just persisted (or learned through replication)."""
        self._event_groups.set(event_id, group)

    async def get_state_for_groups(self, groups: Iterable[int]) -> dict[int, Mapping[StateKey, str]]:
        """The full state map of each group (read through the delta chain, cached)."""
        result: dict[int, Mapping[StateKey, str]] = {}
        missing = []
        for group in set(groups):
            cached = self._group_cache.get(group)
            if cached is not None:
                result[group] = cached
            else:
                missing.append(group)
        if missing:
            loaded = await self.db.run_interaction("get_state_for_groups", self._load_groups_txn, missing)
            for group, state in loaded.items():
                self._group_cache.set(group, state)
            result.update(loaded)
        return result

    async def get_state_after_events(self, event_ids: Iterable[str]) -> dict[str, Mapping[StateKey, str]]:
        groups = await self.get_state_groups_for_events(event_ids)
        states = await self.get_state_for_groups(groups.values())
        return {event_id: states[group] for event_id, group in groups.items()}

    def _load_groups_txn(self, txn: Txn, groups: list[int]) -> dict[int, Mapping[StateKey, str]]:
        return {group: self._load_group_txn(txn, group) for group in groups}

    def _load_group_txn(self, txn: Txn, group: int) -> Mapping[StateKey, str]:
        # Runs on a database thread: it must not touch the (reactor-owned) cache.
        chain: list[int] = []
        current: int | None = group
        while current is not None:
            chain.append(current)
            txn.execute("SELECT prev_group FROM state_groups WHERE id = ?", (current,))
            row = txn.fetchone()
            current = int(row[0]) if row and row[0] is not None else None
        state: StateMap = {}
        if chain:
            clause, args = in_list("state_group", chain)
            txn.execute(f"SELECT state_group, type, state_key, event_id FROM state_group_state WHERE {clause}", args)
            deltas: dict[int, list[tuple[StateKey, str]]] = {}
            for state_group, etype, state_key, event_id in txn.fetchall():
                deltas.setdefault(int(state_group), []).append(((etype, state_key), event_id))
            for member in reversed(chain):
                state.update(deltas.get(member, []))
        return state

    async def get_current_state_ids(self, room_id: str) -> StateMap:
        rows = await self.db.execute(
            "get_current_state_ids", "SELECT type, state_key, event_id FROM current_state_events WHERE room_id = ?", room_id
        )
        return {(t, k): e for t, k, e in rows}

    async def get_current_state_event_id(self, room_id: str, etype: str, state_key: str) -> str | None:
        rows = await self.db.execute(
            "get_current_state_event_id",
            "SELECT event_id FROM current_state_events WHERE room_id = ? AND type = ? AND state_key = ?",
            room_id, etype, state_key,
        )
        return rows[0][0] if rows else None

    # --- writing (inside the persist transaction) --------------------------------------------

    def _new_group_id_txn(self, txn: Txn) -> int:
        if txn.engine.name == "postgres":
            txn.execute("SELECT nextval('state_group_id_seq')")
            return int(txn.fetchone()[0])
        txn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM state_groups")
        return int(txn.fetchone()[0])

    def store_group_txn(
        self, txn: Txn, room_id: str, event_id: str, prev_group: int | None,
        delta: Mapping[StateKey, str], full_state: Mapping[StateKey, str],
    ) -> int:
        """Store a new group for `full_state`, as a delta on `prev_group` when the chain is short."""
        chain_length = 0
        if prev_group is not None:
            txn.execute("SELECT chain_length FROM state_groups WHERE id = ?", (prev_group,))
            row = txn.fetchone()
            chain_length = int(row[0]) + 1 if row else MAX_CHAIN_LENGTH
        use_delta = prev_group is not None and chain_length < MAX_CHAIN_LENGTH
        group = self._new_group_id_txn(txn)
        rows_source: Mapping[StateKey, str] = delta if use_delta else full_state
        txn.execute(
            "INSERT INTO state_groups (id, room_id, event_id, prev_group, chain_length) VALUES (?, ?, ?, ?, ?)",
            (group, room_id, event_id, prev_group if use_delta else None, chain_length if use_delta else 0),
        )
        txn.execute_many(
            "INSERT INTO state_group_state (state_group, type, state_key, event_id) VALUES (?, ?, ?, ?)",
            [(group, t, k, e) for (t, k), e in rows_source.items()],
        )
        frozen = dict(full_state)
        txn.call_after_commit(lambda: self._group_cache.set(group, frozen))
        return group

    def update_current_state_txn(
        self, txn: Txn, room_id: str, to_delete: Iterable[StateKey], to_insert: Mapping[StateKey, str],
        memberships: Mapping[str, Any],
    ) -> None:
        """Apply a delta to the room's current state; `memberships` maps member event ids to
        their membership."""
        txn.execute_many(
            "DELETE FROM current_state_events WHERE room_id = ? AND type = ? AND state_key = ?",
            [(room_id, t, k) for t, k in list(to_delete) + list(to_insert)],
        )
        txn.execute_many(
            "INSERT INTO current_state_events (room_id, type, state_key, event_id, membership) VALUES (?, ?, ?, ?, ?)",
            [(room_id, t, k, e, memberships.get(e) if t == "m.room.member" else None) for (t, k), e in to_insert.items()],
        )
