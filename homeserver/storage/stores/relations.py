"""Relations between events (`m.relates_to`): children of an event, thread summaries and the
list of a room's threads."""

from typing import Any

from homeserver.storage.database import Database
from homeserver.storage.id_generators import StreamIdGenerator
from homeserver.storage.stores.events import TopologicalPosition, in_list
from homeserver.util.caches import StreamCache

# Cached for an event known to have no thread: only a new relation to it (recorded in the
# events stream's `changes` under its id) can give it one; a redaction can only take replies
# away. Events with a thread are read every time.
_NO_THREAD = (0, "")


class RelationsStore:
    def __init__(self, db: Database, event_ids: StreamIdGenerator):
        self.db = db
        self._without_thread: StreamCache[str, tuple[int, str]] = StreamCache(
            "events_without_thread", event_ids.changes, event_ids.get_current_token, 50_000)

    async def get_children(
        self, parent_ids: list[str], rel_type: str | None, event_type: str | None,
        before: TopologicalPosition | None, after: TopologicalPosition | None, backwards: bool, limit: int,
    ) -> list[str]:
        """Ids of events relating to any of `parent_ids`, in topological order."""
        clause, args = in_list("r.relates_to_id", parent_ids)
        clauses = [clause, "e.rejected_reason IS NULL"]
        if rel_type is not None:
            clauses.append("r.relation_type = ?")
            args.append(rel_type)
        if event_type is not None:
            clauses.append("e.type = ?")
            args.append(event_type)
        if before is not None:
            clauses.append("(e.topological_ordering, e.stream_ordering) < (?, ?)")
            args += [before.topological, before.stream]
        if after is not None:
            clauses.append("(e.topological_ordering, e.stream_ordering) > (?, ?)")
            args += [after.topological, after.stream]
        order = "DESC" if backwards else "ASC"
        rows = await self.db.execute(
            "get_relation_children",
            "SELECT e.event_id FROM event_relations AS r JOIN events AS e ON e.event_id = r.event_id"
            " JOIN events AS p ON p.event_id = r.relates_to_id AND p.room_id = e.room_id"
            f" WHERE {' AND '.join(clauses)} ORDER BY e.topological_ordering {order}, e.stream_ordering {order} LIMIT ?",
            *args, limit,
        )
        return [r[0] for r in rows]

    def prime_new_event(self, event_id: str, position: int) -> None:
        """An event just persisted at `position` has no thread yet, unless a relation to its id
        was recorded before it existed."""
        if self._without_thread.changes.last_change(event_id) is None:
            self._without_thread.put(event_id, position, _NO_THREAD)

    async def get_thread_summaries(self, root_ids: list[str]) -> dict[str, tuple[int, str]]:
        """root id -> (number of replies, id of the latest reply), for roots that have replies."""
        unknown = [root for root in root_ids if self._without_thread.get(root, root) is None]
        if not unknown:
            return {}
        read_at = self._without_thread.position()
        found = await self._read_thread_summaries(unknown)
        for root in unknown:
            if root not in found:
                self._without_thread.put(root, read_at, _NO_THREAD)
        return found

    async def _read_thread_summaries(self, root_ids: list[str]) -> dict[str, tuple[int, str]]:
        clause, args = in_list("r.relates_to_id", root_ids)
        rows = await self.db.execute(
            "get_thread_summaries",
            "SELECT r.relates_to_id, COUNT(*), MAX(e.stream_ordering) FROM event_relations AS r"
            f" JOIN events AS e ON e.event_id = r.event_id JOIN events AS p ON p.event_id = r.relates_to_id"
            f" WHERE {clause} AND r.relation_type = 'm.thread' AND p.room_id = e.room_id"
            " AND e.rejected_reason IS NULL GROUP BY r.relates_to_id",
            *args,
        )
        if not rows:
            return {}
        latest_orderings = [int(r[2]) for r in rows]
        order_clause, order_args = in_list("stream_ordering", latest_orderings)
        latest = dict(await self.db.execute(
            "get_thread_latest", f"SELECT stream_ordering, event_id FROM events WHERE {order_clause}", *order_args
        ))
        return {root: (int(count), latest[int(ordering)]) for root, count, ordering in rows if int(ordering) in latest}

    async def get_threads_participated(self, root_ids: list[str], user_id: str) -> set[str]:
        if not root_ids:
            return set()
        clause, args = in_list("r.relates_to_id", root_ids)
        rows = await self.db.execute(
            "get_threads_participated",
            "SELECT DISTINCT r.relates_to_id FROM event_relations AS r JOIN events AS e ON e.event_id = r.event_id"
            f" WHERE {clause} AND r.relation_type = 'm.thread' AND e.sender = ?",
            *args, user_id,
        )
        return {r[0] for r in rows}

    async def get_threads(self, room_id: str, before_stream: int | None, limit: int, participant: str | None) -> list[tuple[str, int]]:
        """(root id, latest reply stream ordering) of the room's threads, latest activity first."""
        args: list[Any] = [room_id]
        having = ""
        if before_stream is not None:
            having = " HAVING MAX(e.stream_ordering) < ?"
            args.append(before_stream)
        participant_clause = ""
        if participant is not None:
            participant_clause = (
                " AND r.relates_to_id IN (SELECT r2.relates_to_id FROM event_relations AS r2"
                " JOIN events AS e2 ON e2.event_id = r2.event_id WHERE r2.relation_type = 'm.thread' AND e2.sender = ?"
                " UNION SELECT event_id FROM events WHERE room_id = ? AND sender = ?)"
            )
            args = [room_id, participant, room_id, participant] + args[1:]
        rows = await self.db.execute(
            "get_threads",
            "SELECT r.relates_to_id, MAX(e.stream_ordering) AS latest FROM event_relations AS r"
            " JOIN events AS e ON e.event_id = r.event_id"
            f" WHERE e.room_id = ? AND r.relation_type = 'm.thread' AND e.rejected_reason IS NULL{participant_clause}"
            f" GROUP BY r.relates_to_id{having} ORDER BY latest DESC LIMIT ?",
            *args, limit,
        )
        return [(r[0], int(r[1])) for r in rows]
