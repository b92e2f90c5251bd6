"""Reading events: by id (cached, with redactions applied), the room graph's edges and
forward extremities, transaction ids, and the room timeline in stream and topological order."""

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from homeserver.events.event import Event
from homeserver.events.redaction import prune_event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.storage.database import Database, Txn
from homeserver.util.caches import LruCache


@dataclass(frozen=True, order=True)
class TopologicalPosition:
    """Where an event sits in a room's history: (depth, stream ordering)."""

    topological: int
    stream: int


def placeholders(values: Collection[Any]) -> str:
    """`?, ?, ...`: one placeholder per value."""
    return ", ".join("?" for _ in values)


def in_list(column: str, values: Collection[Any]) -> tuple[str, list[Any]]:
    """`column IN (?, ?, ...)` and its arguments."""
    return f"{column} IN ({placeholders(values)})", list(values)


# PDU fields whose values repeat across the events of a room: decoded once per batch.
_SHARED_FIELDS = ("room_id", "sender", "type")


def _decode_pdus(rows: list[Any]) -> list[dict[str, Any]]:
    """The PDUs of fetched rows (JSON in the second column), decoded in one pass: the decoder
    then keeps one copy of each key name for the whole batch, and repeated room ids, senders
    and types are shared too, which makes cached events about a third smaller."""
    if not rows:
        return []
    pdus: list[dict[str, Any]] = json.loads("[" + ",".join(row[1] for row in rows) + "]")
    shared: dict[str, str] = {}
    for pdu in pdus:
        for field in _SHARED_FIELDS:
            value = pdu.get(field)
            if isinstance(value, str):
                pdu[field] = shared.setdefault(value, value)
    return pdus


class _Fetch:
    """One read of events from the database that other requests for the same ids join,
    instead of reading them again (a new event is read by every woken /sync at once)."""

    def __init__(self) -> None:
        self._waiters: list[defer.Deferred[dict[str, Event]]] = []

    def wait(self) -> "defer.Deferred[dict[str, Event]]":
        waiter: defer.Deferred[dict[str, Event]] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def finish(self, result: dict[str, Event] | None, error: BaseException | None = None) -> None:
        for waiter in self._waiters:
            if error is not None:
                waiter.errback(error)
            else:
                waiter.callback(result or {})


class EventsStore:
    def __init__(self, db: Database):
        self.db = db
        self._event_cache: LruCache[str, Event] = LruCache("events", 50_000)
        self._fetching: dict[str, _Fetch] = {}
        # Bumped by every invalidation: a read that overlapped one does not fill the cache.
        self._generation = 0

    # --- events by id ----------------------------------------------------------------------

    async def get_events(self, event_ids: Iterable[str], allow_rejected: bool = False) -> dict[str, Event]:
        """The events that exist, by id, with redactions applied."""
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, Event] = {}
        missing = []
        for event_id in wanted:
            cached = self._event_cache.get(event_id)
            if cached is not None:
                found[event_id] = cached
            else:
                missing.append(event_id)
        if missing:
            found.update(await self._fetch(missing))
        if not allow_rejected:
            found = {k: v for k, v in found.items() if v.rejected_reason is None}
        return found

    async def get_event(self, event_id: str, allow_rejected: bool = False) -> Event | None:
        return (await self.get_events([event_id], allow_rejected)).get(event_id)

    async def _fetch(self, event_ids: list[str]) -> dict[str, Event]:
        """Read events not in the cache, joining reads of the same ids already under way."""
        joined: dict[_Fetch, list[str]] = {}
        mine: list[str] = []
        for event_id in event_ids:
            fetch = self._fetching.get(event_id)
            if fetch is None:
                mine.append(event_id)
            else:
                joined.setdefault(fetch, []).append(event_id)
        waits = [(fetch.wait(), ids) for fetch, ids in joined.items()]
        found: dict[str, Event] = {}
        if mine:
            try:
                found.update(await self._read(mine))
            except BaseException:
                for waiter, _ in waits:
                    waiter.addErrback(lambda _: None)  # failing anyway; nobody awaits these
                raise
        for waiter, ids in waits:
            result = await waiter
            found.update({event_id: result[event_id] for event_id in ids if event_id in result})
        return found

    async def _read(self, event_ids: list[str]) -> dict[str, Event]:
        fetch = _Fetch()
        for event_id in event_ids:
            self._fetching[event_id] = fetch
        generation = self._generation
        try:
            fetched = await self.db.run_interaction("get_events", self._fetch_events_txn, event_ids)
        except BaseException as e:
            fetch.finish(None, e)
            raise
        finally:
            for event_id in event_ids:
                if self._fetching.get(event_id) is fetch:
                    del self._fetching[event_id]
        if generation == self._generation:
            for event in fetched.values():
                self._event_cache.set(event.event_id, event)
        fetch.finish(fetched)
        return fetched

    def _fetch_events_txn(self, txn: Txn, event_ids: list[str]) -> dict[str, Event]:
        result: dict[str, Event] = {}
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            clause, args = in_list("e.event_id", chunk)
            txn.execute(
                "SELECT e.event_id, e.json, r.room_version, e.rejected_reason, e.stream_ordering,"
                " e.topological_ordering, e.replaces_state FROM events AS e JOIN rooms AS r ON r.room_id = e.room_id"
                f" WHERE {clause}",
                args,
            )
            rows = txn.fetchall()
            for (event_id, _, version, rejected, stream, topo, replaces), pdu in zip(rows, _decode_pdus(rows), strict=True):
                event = Event(pdu, KNOWN_ROOM_VERSIONS[version], event_id)
                event.rejected_reason = rejected
                event.internal_metadata["stream_ordering"] = int(stream)
                event.internal_metadata["topological_ordering"] = int(topo)
                if replaces:
                    event.unsigned["replaces_state"] = replaces
                result[event_id] = event
        self._add_prev_content_txn(txn, result)
        self._apply_redactions_txn(txn, result)
        return result

    def _add_prev_content_txn(self, txn: Txn, events: dict[str, Event]) -> None:
        """`unsigned.prev_content` and `prev_sender` of state events, from the event they replaced."""
        replaced = {e.unsigned["replaces_state"]: e for e in events.values() if "replaces_state" in e.unsigned}
        if not replaced:
            return
        clause, args = in_list("event_id", list(replaced))
        txn.execute(f"SELECT event_id, json FROM events WHERE {clause}", args)
        by_id = {event_id: json.loads(pdu_json) for event_id, pdu_json in txn.fetchall()}
        for event in events.values():
            previous = by_id.get(event.unsigned.get("replaces_state", ""))
            if previous is not None:
                event.unsigned["prev_content"] = previous.get("content", {})
                event.unsigned["prev_sender"] = previous.get("sender")

    def _apply_redactions_txn(self, txn: Txn, events: dict[str, Event]) -> None:
        if not events:
            return
        clause, args = in_list("r.redacts", list(events))
        txn.execute(
            "SELECT r.redacts, e.json, e.event_id FROM redactions AS r JOIN events AS e ON e.event_id = r.event_id"
            f" WHERE {clause} AND e.rejected_reason IS NULL ORDER BY e.stream_ordering",
            args,
        )
        for redacted_id, redaction_json, redaction_id in txn.fetchall():
            original = events.get(redacted_id)
            if original is None or "redacted_by" in original.internal_metadata:
                continue
            pruned = prune_event(original)
            pruned.internal_metadata.update(original.internal_metadata)
            pruned.internal_metadata["redacted_by"] = redaction_id
            redaction = Event(json.loads(redaction_json), original.room_version, redaction_id)
            pruned.unsigned["redacted_because"] = _client_dict(redaction)
            events[redacted_id] = pruned

    def invalidate_event(self, event_id: str) -> None:
        self._generation += 1
        self._event_cache.invalidate(event_id)
        # A read under way may predate the change: later requests read afresh.
        self._fetching.pop(event_id, None)

    # --- the room graph ----------------------------------------------------------------------

    async def get_forward_extremities(self, room_id: str) -> list[str]:
        rows = await self.db.execute(
            "get_forward_extremities", "SELECT event_id FROM event_forward_extremities WHERE room_id = ?", room_id
        )
        return [r[0] for r in rows]

    async def get_event_id_for_txn(self, user_id: str, scope: str, txn_id: str) -> str | None:
        rows = await self.db.execute(
            "get_event_id_for_txn",
            "SELECT event_id FROM event_txn_ids WHERE user_id = ? AND scope = ? AND txn_id = ?",
            user_id, scope, txn_id,
        )
        return rows[0][0] if rows else None

    async def get_position(self, event_id: str) -> TopologicalPosition | None:
        rows = await self.db.execute(
            "get_event_position",
            "SELECT topological_ordering, stream_ordering FROM events WHERE event_id = ?", event_id,
        )
        return TopologicalPosition(int(rows[0][0]), int(rows[0][1])) if rows else None

    async def position_at_stream(self, room_id: str, stream: int) -> TopologicalPosition:
        """The position just after the room's last event at or before stream position `stream`."""
        rows = await self.db.execute(
            "position_at_stream",
            "SELECT topological_ordering, stream_ordering FROM events WHERE room_id = ? AND stream_ordering <= ?"
            " ORDER BY stream_ordering DESC LIMIT 1",
            room_id, stream,
        )
        if not rows:
            return TopologicalPosition(0, 0)
        return TopologicalPosition(int(rows[0][0]), int(rows[0][1]) + 1)

    async def get_max_stream_ordering(self) -> int:
        rows = await self.db.execute("get_max_stream_ordering", "SELECT COALESCE(MAX(stream_ordering), 0) FROM events")
        return int(rows[0][0])

    async def get_room_timeline(
        self, room_id: str, before: TopologicalPosition | None, after: TopologicalPosition | None,
        backwards: bool, limit: int, types: list[str] | None = None, not_types: list[str] | None = None,
        senders: list[str] | None = None, not_senders: list[str] | None = None,
    ) -> list[str]:
        """Event ids of a room strictly between `after` and `before`, in topological order
        (newest first when `backwards`), at most `limit`."""
        clauses = ["room_id = ?", "rejected_reason IS NULL"]
        args: list[Any] = [room_id]
        if before is not None:
            clauses.append("(topological_ordering, stream_ordering) < (?, ?)")
            args += [before.topological, before.stream]
        if after is not None:
            clauses.append("(topological_ordering, stream_ordering) > (?, ?)")
            args += [after.topological, after.stream]
        for column, values, negate in (("type", types, False), ("type", not_types, True),
                                       ("sender", senders, False), ("sender", not_senders, True)):
            if values:
                clause, values_args = in_list(column, values)
                clauses.append(("NOT " if negate else "") + clause)
                args += values_args
        order = "DESC" if backwards else "ASC"
        rows = await self.db.execute(
            "get_room_timeline",
            f"SELECT event_id FROM events WHERE {' AND '.join(clauses)}"
            f" ORDER BY topological_ordering {order}, stream_ordering {order} LIMIT ?",
            *args, limit,
        )
        return [r[0] for r in rows]

    async def get_event_closest_to_ts(self, room_id: str, ts: int, forwards: bool) -> str | None:
        comparison, order = (">=", "ASC") if forwards else ("<=", "DESC")
        rows = await self.db.execute(
            "get_event_closest_to_ts",
            f"SELECT event_id FROM events WHERE room_id = ? AND origin_server_ts {comparison} ?"
            f" AND rejected_reason IS NULL ORDER BY origin_server_ts {order}, stream_ordering {order} LIMIT 1",
            room_id, ts,
        )
        return rows[0][0] if rows else None


def _client_dict(event: Event) -> dict[str, Any]:
    """A compact client-format copy of an event, for `unsigned.redacted_because`."""
    body: dict[str, Any] = {
        "event_id": event.event_id, "type": event.type, "sender": event.sender,
        "content": event.content, "origin_server_ts": event.origin_server_ts, "room_id": event.room_id,
    }
    if event.redacts:
        body["redacts"] = event.redacts
    return body


class TimelineStore:
    """Set-based timeline reads for /sync: one query for all rooms, never one per room."""

    def __init__(self, db: Database):
        self.db = db

    async def get_recent_event_ids(
        self, room_ids: list[str], after: int | None, upto: int, limit: int
    ) -> dict[str, list[str]]:
        """Per room, the ids of up to `limit` latest events with `after < stream <= upto`,
        oldest first."""
        if not room_ids:
            return {}
        clause, args = in_list("room_id", room_ids)
        lower = ""
        if after is not None:
            lower = " AND stream_ordering > ?"
            args.append(after)
        rows = await self.db.execute(
            "get_recent_event_ids",
            "SELECT room_id, event_id FROM (SELECT room_id, event_id, stream_ordering, ROW_NUMBER() OVER"
            " (PARTITION BY room_id ORDER BY stream_ordering DESC) AS n FROM events"
            f" WHERE {clause} AND rejected_reason IS NULL{lower} AND stream_ordering <= ?) AS recent"
            " WHERE n <= ? ORDER BY room_id, stream_ordering",
            *args, upto, limit,
        )
        result: dict[str, list[str]] = {room_id: [] for room_id in room_ids}
        for room_id, event_id in rows:
            result[room_id].append(event_id)
        return result

    async def get_last_event_ids_at(self, room_ids: list[str], position: int) -> dict[str, str]:
        """Per room, the id of its last event at or before stream `position`."""
        if not room_ids:
            return {}
        clause, args = in_list("e.room_id", room_ids)
        rows = await self.db.execute(
            "get_last_event_ids_at",
            "SELECT e.room_id, e.event_id FROM events AS e JOIN (SELECT room_id, MAX(stream_ordering) AS s FROM events"
            f" AS e WHERE {clause} AND stream_ordering <= ? GROUP BY room_id) AS last"
            " ON last.room_id = e.room_id AND last.s = e.stream_ordering",
            *args, position,
        )
        return dict(rows)

    async def get_transaction_ids(self, user_id: str, device_scope: str, event_ids: list[str]) -> dict[str, str]:
        """event id -> the client's transaction id, for events this device sent (a scope is
        `<device or token> <endpoint>`)."""
        if not event_ids:
            return {}
        clause, args = in_list("event_id", event_ids)
        prefix = device_scope + " "
        rows = await self.db.execute(
            "get_transaction_ids",
            "SELECT event_id, txn_id FROM event_txn_ids WHERE user_id = ? AND substr(scope, 1, ?) = ?"
            f" AND {clause}",
            user_id, len(prefix), prefix, *args,
        )
        return dict(rows)

    async def get_event_ids_between(self, room_ids: list[str], after: int, upto: int, limit: int) -> list[str]:
        """Ids of events of any of the rooms with `after < stream <= upto`, in stream order."""
        if not room_ids:
            return []
        clause, args = in_list("room_id", room_ids)
        rows = await self.db.execute(
            "get_event_ids_between",
            f"SELECT event_id FROM events WHERE {clause} AND stream_ordering > ? AND stream_ordering <= ?"
            " AND rejected_reason IS NULL ORDER BY stream_ordering LIMIT ?",
            *args, after, upto, limit,
        )
        return [r[0] for r in rows]

    async def get_rows_by_writer(self, instance: str, after: int, upto: int, limit: int) -> list["EventRow"]:
        """The events one writer persisted with `after < stream <= upto`, for replication."""
        rows = await self.db.execute(
            "get_event_rows_by_writer",
            "SELECT e.stream_ordering, e.event_id, e.room_id, e.type, e.state_key, r.redacts, e.sender,"
            " rel.relates_to_id, g.state_group FROM events AS e"
            " LEFT JOIN redactions AS r ON r.event_id = e.event_id"
            " LEFT JOIN event_relations AS rel ON rel.event_id = e.event_id"
            " LEFT JOIN event_to_state_groups AS g ON g.event_id = e.event_id"
            " WHERE e.instance_name = ? AND e.stream_ordering > ? AND e.stream_ordering <= ?"
            " ORDER BY e.stream_ordering LIMIT ?",
            instance, after, upto, limit,
        )
        return [EventRow(int(s), e, r, t, k, red, sender, rel, None if g is None else int(g))
                for s, e, r, t, k, red, sender, rel, g in rows]


@dataclass(frozen=True)
class EventRow:
    """What a reader needs to know about an event another process persisted."""

    stream_ordering: int
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    redacts: str | None
    sender: str
    relates_to: str | None = None
    state_group: int | None = None

    def changed_entities(self) -> list[str]:
        """What the events stream's `changes` records for this event (see `changed_entities`)."""
        return changed_entities(self.room_id, self.type, self.state_key, self.relates_to)


def changed_entities(room_id: str, event_type: str, state_key: str | None, relates_to: str | None) -> list[str]:
    """The entities an event changes in the events stream's `changes`: for a membership event
    its room and its target user (whose memberships and the room's members are cached), for a
    relation its parent event (whose thread summary is cached). Other events change nothing
    cached this way (the notifier's `room_changes` tracks every room's timeline)."""
    entities = []
    if event_type == "m.room.member" and state_key:
        entities += [room_id, state_key]
    if relates_to:
        entities.append(relates_to)
    return entities
