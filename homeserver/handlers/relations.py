"""Event relationships: `/relations`, `/threads`, and the aggregations bundled into events
(`unsigned.m.relations.m.thread`)."""

from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.events.serialize import serialize_event
from homeserver.handlers.room_read import encode_token
from homeserver.http.errors import MatrixError, not_found
from homeserver.storage.stores.events import TopologicalPosition
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAX_LIMIT = 100
RECURSION_DEPTH = 3


class RelationsHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stores = hs.stores

    async def _visible_parent(self, user_id: str, room_id: str, event_id: str) -> Event:
        event = await self.stores.events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        if not await self.hs.visibility_handler.filter_events_for_user(user_id, [event]):
            raise not_found("Event not found")
        return event

    async def get_relations(
        self, user_id: str, room_id: str, event_id: str, rel_type: str | None, event_type: str | None,
        from_token: str | None, to_token: str | None, direction: str, limit: int, recurse: bool,
    ) -> dict[str, Any]:
        await self._visible_parent(user_id, room_id, event_id)
        read = self.hs.room_read_handler
        backwards = direction == "b"
        limit = max(1, min(limit, MAX_LIMIT))
        start = await read._resolve_token(room_id, from_token) if from_token else None
        bound = await read._resolve_token(room_id, to_token) if to_token else None
        if bound is not None:  # Tokens sit at an event: `to` includes it, as `from` excludes it.
            bound = TopologicalPosition(bound.topological, bound.stream + (-1 if backwards else 1))
        before, after = (start, bound) if backwards else (bound, start)
        parents = [event_id]
        if recurse:
            parents = await self._descendant_parents(event_id, rel_type)
        ids = await self.stores.relations.get_children(parents, rel_type, event_type, before, after, backwards, limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        fetched = await self.stores.events.get_events(ids)
        events = await self.hs.visibility_handler.filter_events_for_user(user_id, [fetched[i] for i in ids if i in fetched])
        response: dict[str, Any] = {"chunk": await self.serialize_with_bundles(user_id, events)}
        if more and ids:
            last = fetched[ids[-1]]
            response["next_batch"] = encode_token(_position(last))
        if from_token:
            response["prev_batch"] = from_token
        if recurse:
            response["recursion_depth"] = RECURSION_DEPTH
        return response

    async def _descendant_parents(self, event_id: str, rel_type: str | None) -> list[str]:
        parents = [event_id]
        frontier = [event_id]
        for _ in range(RECURSION_DEPTH - 1):
            children = await self.stores.relations.get_children(frontier, None, None, None, None, False, 1000)
            frontier = [c for c in children if c not in parents]
            if not frontier:
                break
            parents.extend(frontier)
        return parents

    async def get_threads(self, user_id: str, room_id: str, include: str, from_token: str | None, limit: int) -> dict[str, Any]:
        await self.hs.room_read_handler._check_can_read_history(user_id, room_id)
        limit = max(1, min(limit, MAX_LIMIT))
        before = None
        if from_token is not None:
            if not (from_token.isascii() and from_token.isdigit()) or int(from_token) >= 2**63:
                raise MatrixError(400, "Invalid from token", "M_INVALID_PARAM")
            before = int(from_token)
        participant = user_id if include == "participated" else None
        threads = await self.stores.relations.get_threads(room_id, before, limit + 1, participant)
        more = len(threads) > limit
        threads = threads[:limit]
        roots = await self.stores.events.get_events(root for root, _ in threads)
        visible = await self.hs.visibility_handler.filter_events_for_user(
            user_id, [roots[root] for root, _ in threads if root in roots]
        )
        response: dict[str, Any] = {"chunk": await self.serialize_with_bundles(user_id, visible)}
        if more and threads:
            response["next_batch"] = str(threads[-1][1])
        return response

    async def serialize_with_bundles(self, user_id: str, events: list[Event]) -> list[dict[str, Any]]:
        """Client-format events with `unsigned.m.relations.m.thread` on thread roots."""
        now = now_ms()
        bundles = await self.get_bundles(user_id, events, now)
        serialized = [serialize_event(e, now) for e in events]
        for event, body in zip(events, serialized, strict=True):
            if event.event_id in bundles:
                body["unsigned"]["m.relations"] = bundles[event.event_id]
        return serialized

    async def get_bundles(self, user_id: str, events: list[Event], now: int) -> dict[str, dict[str, Any]]:
        """event id -> the aggregations to bundle as `unsigned.m.relations` (thread summaries),
        for all the events at once."""
        summaries = await self.stores.relations.get_thread_summaries([e.event_id for e in events])
        if not summaries:
            return {}
        participated = await self.stores.relations.get_threads_participated(list(summaries), user_id)
        latest = await self.stores.events.get_events(latest_id for _, latest_id in summaries.values())
        bundles = {}
        for event in events:
            summary = summaries.get(event.event_id)
            if summary is None or summary[1] not in latest:
                continue
            count, latest_id = summary
            bundles[event.event_id] = {"m.thread": {
                "latest_event": serialize_event(latest[latest_id], now),
                "count": count,
                "current_user_participated": event.event_id in participated or event.sender == user_id,
            }}
        return bundles


def _position(event: Event) -> TopologicalPosition:
    return TopologicalPosition(event.internal_metadata["topological_ordering"], event.internal_metadata["stream_ordering"])
