"""Writing events: the `events` stream's writer side.

Concurrent persist requests are queued and written together in one transaction (DESIGN §10):
each event gets its stream position, its rows (event, edges, auth, extremities, state group,
current state, membership, redaction, relation, transaction id) and, after the commit, the
callers are answered together.
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canonicaljson import encode_canonical_json
from twisted.internet import defer

from homeserver.events.event import Event
from homeserver.storage.database import Database, Txn
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.events import EventsStore, changed_entities, in_list
from homeserver.storage.stores.relations import RelationsStore
from homeserver.storage.stores.search import delete_search_txn, store_search_txn
from homeserver.storage.stores.state import StateKey, StateStore

logger = logging.getLogger(__name__)

MAX_BATCH = 100


@dataclass
class EventContext:
    """What the creator of an event learned about the room before the event."""

    state_group_before: int | None
    state_before: Mapping[StateKey, str]
    # (user_id, scope, txn_id) of the client request, for idempotent retries.
    txn: tuple[str, str, str] | None = None
    # Filled in by the persister.
    state_group_after: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def state_after(self, event: Event) -> Mapping[StateKey, str]:
        if event.is_state() and event.rejected_reason is None:
            return {**self.state_before, event.state_key_tuple: event.event_id}
        return self.state_before


class DuplicateTransactionError(Exception):
    """The client transaction of an event was already used by `event_id`: a retry of a
    request whose first attempt got there first. The event is not persisted."""

    def __init__(self, event_id: str):
        super().__init__(f"transaction already sent as {event_id}")
        self.event_id = event_id


class EventsPersister:
    def __init__(self, db: Database, ids: StreamIdGenerator, events: EventsStore, state: StateStore,
                 relations: RelationsStore):
        self.db = db
        self.ids = ids
        self.events = events
        self.state = state
        self.relations = relations
        self._queue: list[tuple[Event, EventContext, defer.Deferred[int]]] = []
        self._draining = False
        self.on_persisted: list[Callable[[list[Event]], Awaitable[None] | None]] = []

    async def persist(self, event: Event, context: EventContext) -> int:
        """Persist one event; returns its stream ordering once it is committed. Raises
        `DuplicateTransactionError` when its client transaction already has an event."""
        d: defer.Deferred[int] = defer.Deferred()
        self._queue.append((event, context, d))
        if not self._draining:
            defer.ensureDeferred(self._drain())
        return await d

    async def _drain(self) -> None:
        self._draining = True
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                pairs = [(event, context) for event, context, _ in batch]
                try:
                    outcomes = await self.db.run_interaction("persist_events", self._persist_txn, pairs)
                except Exception as e:
                    for _, _, d in batch:
                        d.errback(e)
                    continue
                persisted = [event for (event, _), outcome in zip(pairs, outcomes, strict=True) if isinstance(outcome, int)]
                for event in persisted:
                    if event.redacts:
                        self.events.invalidate_event(event.redacts)
                for callback in self.on_persisted:
                    try:
                        # A callback may return an awaitable: callers are answered (and later
                        # callbacks run) once it is done.
                        result = callback(persisted)
                        if result is not None:
                            await result
                    except Exception:
                        logger.exception("on_persisted callback failed")
                for (_, _, d), outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, int):
                        d.callback(outcome)
                    else:
                        d.errback(outcome)
        finally:
            self._draining = False

    def _persist_txn(self, txn: Txn, pairs: list[tuple[Event, EventContext]]) -> list[int | DuplicateTransactionError]:
        """Each event's stream ordering, or the error for an event whose client transaction
        already has one (stored earlier, or earlier in this batch): a retry that raced its
        first attempt, which must neither store a second event nor fail the batch."""
        outcomes: list[int | DuplicateTransactionError] = []
        claimed: dict[tuple[str, str, str], str] = {}
        for event, context in pairs:
            earlier = self._event_for_txn_txn(txn, context.txn, claimed) if context.txn is not None else None
            if earlier is not None:
                outcomes.append(DuplicateTransactionError(earlier))
                continue
            outcomes.append(self._persist_one_txn(txn, event, context))
            if context.txn is not None:
                claimed[context.txn] = event.event_id
        return outcomes

    def _event_for_txn_txn(self, txn: Txn, key: tuple[str, str, str], claimed: dict[tuple[str, str, str], str]) -> str | None:
        if key in claimed:
            return claimed[key]
        user_id, scope, txn_id = key
        txn.execute("SELECT event_id FROM event_txn_ids WHERE user_id = ? AND scope = ? AND txn_id = ?",
                    (user_id, scope, txn_id))
        row = txn.fetchone()
        return str(row[0]) if row else None

    def _persist_one_txn(self, txn: Txn, event: Event, context: EventContext) -> int:
        ordering = self.ids.get_next_txn(txn, changed_entities(event.room_id, event.type, event.state_key, _parent(event)))
        event.internal_metadata["stream_ordering"] = ordering
        event.internal_metadata["topological_ordering"] = event.depth
        pdu = event.get_pdu_json()
        pdu.pop("unsigned", None)
        txn.execute(
            "INSERT INTO events (stream_ordering, topological_ordering, event_id, room_id, type, state_key,"
            " sender, origin_server_ts, instance_name, json, rejected_reason, replaces_state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ordering, event.depth, event.event_id, event.room_id, event.type, event.state_key, event.sender,
             event.origin_server_ts, self.ids.instance_name, encode_canonical_json(pdu).decode("utf-8"),
             event.rejected_reason, context.state_before.get(event.state_key_tuple) if event.is_state() else None),
        )
        txn.execute_many("INSERT INTO event_edges (event_id, prev_event_id) VALUES (?, ?)",
                         [(event.event_id, p) for p in event.prev_event_ids()])
        txn.execute_many("INSERT INTO event_auth (event_id, auth_id) VALUES (?, ?)",
                         [(event.event_id, a) for a in event.auth_event_ids()])
        extremities_left = self._update_extremities_txn(txn, event)
        self._store_extras_txn(txn, event, context, ordering)
        self._store_state_txn(txn, event, context, extremities_left)
        # Every woken /sync reads these for the new event: have them ready.
        txn.call_after_commit(lambda: self._prime_caches(event, ordering, context.state_group_after))
        return ordering

    def _prime_caches(self, event: Event, ordering: int, state_group: int | None) -> None:
        if state_group is not None:
            self.state.prime_event_group(event.event_id, state_group)
        self.relations.prime_new_event(event.event_id, ordering)

    def _update_extremities_txn(self, txn: Txn, event: Event) -> list[str]:
        prev_ids = event.prev_event_ids()
        if prev_ids:
            clause, args = in_list("event_id", prev_ids)
            txn.execute(f"DELETE FROM event_forward_extremities WHERE room_id = ? AND {clause}", [event.room_id, *args])
        txn.execute("INSERT INTO event_forward_extremities (room_id, event_id) VALUES (?, ?)", (event.room_id, event.event_id))
        txn.execute("SELECT event_id FROM event_forward_extremities WHERE room_id = ?", (event.room_id,))
        return [r[0] for r in txn.fetchall()]

    def _store_state_txn(self, txn: Txn, event: Event, context: EventContext, extremities: list[str]) -> None:
        group_before = context.state_group_before
        if group_before is None and context.state_before:
            group_before = self.state.store_group_txn(txn, event.room_id, event.event_id, None, {}, context.state_before)
        state_after = context.state_after(event)
        if state_after is context.state_before:
            group_after = group_before
        else:
            group_after = self.state.store_group_txn(
                txn, event.room_id, event.event_id, group_before, {event.state_key_tuple: event.event_id}, state_after
            )
        context.state_group_after = group_after
        if group_after is not None:
            txn.execute("INSERT INTO event_to_state_groups (event_id, state_group) VALUES (?, ?)", (event.event_id, group_after))
        if extremities == [event.event_id] and (event.is_state() or len(event.prev_event_ids()) != 1):
            self._replace_current_state_txn(txn, event.room_id, state_after)
        elif event.is_state() and event.rejected_reason is None:
            # The room has other extremities (a concurrent write elsewhere): apply this
            # event's change; the next event that references all extremities resolves them.
            memberships = {event.event_id: event.membership} if event.type == "m.room.member" else {}
            self.state.update_current_state_txn(txn, event.room_id, [], {event.state_key_tuple: event.event_id}, memberships)

    def _replace_current_state_txn(self, txn: Txn, room_id: str, state: Mapping[StateKey, str]) -> None:
        txn.execute("SELECT type, state_key, event_id FROM current_state_events WHERE room_id = ?", (room_id,))
        current = {(t, k): e for t, k, e in txn.fetchall()}
        to_delete = [key for key in current if key not in state]
        to_insert = {key: e for key, e in state.items() if current.get(key) != e}
        member_ids = [e for (t, _), e in to_insert.items() if t == "m.room.member"]
        memberships: dict[str, Any] = {}
        if member_ids:
            clause, args = in_list("event_id", member_ids)
            txn.execute(f"SELECT event_id, membership FROM room_memberships WHERE {clause}", args)
            memberships = dict(txn.fetchall())
        self.state.update_current_state_txn(txn, room_id, to_delete, to_insert, memberships)

    def _store_extras_txn(self, txn: Txn, event: Event, context: EventContext, ordering: int) -> None:
        if event.type == "m.room.member" and event.state_key is not None and event.membership:
            content = event.content
            txn.execute(
                "INSERT INTO room_memberships (event_id, user_id, sender, room_id, membership, stream_ordering,"
                " display_name, avatar_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event.event_id, event.state_key, event.sender, event.room_id, event.membership, ordering,
                 _str_or_none(content.get("displayname")), _str_or_none(content.get("avatar_url"))),
            )
            if event.membership == "join":
                txn.execute("DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?", (event.state_key, event.room_id))
        if event.type == "m.room.redaction" and event.redacts:
            txn.execute("INSERT INTO redactions (event_id, redacts) VALUES (?, ?)", (event.event_id, event.redacts))
            delete_search_txn(txn, event.redacts)
            # Redaction strips `m.relates_to`: the redacted event no longer relates to anything.
            txn.execute("DELETE FROM event_relations WHERE event_id = ?", (event.redacts,))
        store_search_txn(txn, event, ordering)
        relation = event.content.get("m.relates_to")
        if isinstance(relation, dict) and isinstance(relation.get("event_id"), str) and isinstance(relation.get("rel_type"), str):
            txn.execute(
                "INSERT INTO event_relations (event_id, relates_to_id, relation_type, aggregation_key) VALUES (?, ?, ?, ?)",
                (event.event_id, relation["event_id"], relation["rel_type"], _str_or_none(relation.get("key"))),
            )
        if context.txn is not None:
            user_id, scope, txn_id = context.txn
            txn.execute(
                "INSERT INTO event_txn_ids (user_id, scope, txn_id, room_id, event_id, inserted_ts) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, scope, txn_id, event.room_id, event.event_id, event.origin_server_ts),
            )


def _parent(event: Event) -> str | None:
    """The event this one relates to (`m.relates_to.event_id`), if it names one."""
    relation = event.content.get("m.relates_to")
    return _str_or_none(relation.get("event_id")) if isinstance(relation, dict) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
