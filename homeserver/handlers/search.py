"""`/search`: room events matching a search term in the rooms the user has joined, by rank or
by recency, with optional event context, groupings and room state."""

from typing import TYPE_CHECKING, Any

from homeserver.events.serialize import serialize_event
from homeserver.handlers.room_read import _position, encode_token
from homeserver.http.errors import MatrixError
from homeserver.storage.stores.search import SEARCHABLE, search_words
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
ALL_KEYS = [key for _, key in SEARCHABLE.values()]


def _string_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatrixError(400, f"{name} must be a list of strings", "M_BAD_JSON")
    return value


class SearchHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def search(self, user_id: str, body: dict[str, Any], next_batch: str | None) -> dict[str, Any]:
        categories = body.get("search_categories")
        if not isinstance(categories, dict):
            raise MatrixError(400, "search_categories must be an object", "M_BAD_JSON")
        criteria = categories.get("room_events")
        if criteria is None:
            return {"search_categories": {}}
        if not isinstance(criteria, dict) or not isinstance(criteria.get("search_term"), str):
            raise MatrixError(400, "room_events.search_term is required", "M_BAD_JSON")
        return {"search_categories": {"room_events": await self._room_events(user_id, criteria, next_batch)}}

    async def _room_events(self, user_id: str, criteria: dict[str, Any], next_batch: str | None) -> dict[str, Any]:
        order_by = criteria.get("order_by", "rank")
        if order_by not in ("rank", "recent"):
            raise MatrixError(400, "order_by must be 'rank' or 'recent'", "M_BAD_JSON")
        keys = _string_list(criteria.get("keys"), "keys") or ALL_KEYS
        if any(k not in ALL_KEYS for k in keys):
            raise MatrixError(400, f"keys must be among {', '.join(ALL_KEYS)}", "M_BAD_JSON")
        event_filter = criteria.get("filter") or {}
        if not isinstance(event_filter, dict):
            raise MatrixError(400, "filter must be an object", "M_BAD_JSON")
        limit = event_filter.get("limit", DEFAULT_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise MatrixError(400, "filter.limit must be a non-negative integer", "M_BAD_JSON")
        limit = min(limit, MAX_LIMIT)
        room_ids = await self.hs.stores.members.get_rooms_for_user(user_id)
        wanted_rooms = _string_list(event_filter.get("rooms"), "filter.rooms")
        if wanted_rooms is not None:
            room_ids = [r for r in room_ids if r in wanted_rooms]
        excluded = _string_list(event_filter.get("not_rooms"), "filter.not_rooms") or []
        room_ids = [r for r in room_ids if r not in excluded]
        offset = _parse_batch(next_batch)
        words = search_words(criteria["search_term"])
        hits, count = await self.hs.stores.search.search(
            words, room_ids, keys, order_by, _string_list(event_filter.get("senders"), "filter.senders"), limit, offset
        )
        fetched = await self.hs.stores.events.get_events(h.event_id for h in hits)
        events = await self.hs.visibility_handler.filter_events_for_user(
            user_id, [fetched[h.event_id] for h in hits if h.event_id in fetched]
        )
        ranks = {h.event_id: h.rank for h in hits}
        now = now_ms()
        results = []
        for event in events:
            result: dict[str, Any] = {"rank": ranks[event.event_id], "result": serialize_event(event, now)}
            if criteria.get("event_context"):
                result["context"] = await self._context(user_id, event.room_id, event.event_id, criteria["event_context"])
            results.append(result)
        response: dict[str, Any] = {"results": results, "count": count, "highlights": words}
        if offset + limit < count and hits:
            response["next_batch"] = f"o{offset + limit}"
        groupings = criteria.get("groupings") or {}
        group_by = {str(g.get("key")) for g in groupings.get("group_by", []) if isinstance(g, dict)}
        if group_by:
            response["groups"] = _groups(results, group_by)
        if criteria.get("include_state"):
            response["state"] = await self._state(user_id, {e.room_id for e in events})
        return response

    async def _context(self, user_id: str, room_id: str, event_id: str, options: Any) -> dict[str, Any]:
        if not isinstance(options, dict):
            raise MatrixError(400, "event_context must be an object", "M_BAD_JSON")
        before = min(int(options.get("before_limit", 5)), 20)
        after = min(int(options.get("after_limit", 5)), 20)
        read = self.hs.room_read_handler
        # get_context splits its limit evenly around the event; ask for enough on both sides.
        context = await read.get_context(user_id, room_id, event_id, 2 * max(before, after), _no_filter())
        events_before, events_after = context["events_before"][:before], context["events_after"][:after]
        # The tokens sit at the outermost events returned (or at the result itself).
        edges = [events_before[-1]["event_id"] if events_before else event_id,
                 events_after[-1]["event_id"] if events_after else event_id]
        fetched = await self.hs.stores.events.get_events(edges)
        start, end = (encode_token(_position(fetched[e])) for e in edges)
        result = {"events_before": events_before, "events_after": events_after, "start": start, "end": end}
        if options.get("include_profile"):
            result["profile_info"] = {}
        return result

    async def _state(self, user_id: str, room_ids: set[str]) -> dict[str, Any]:
        read = self.hs.room_read_handler
        return {room_id: await read.get_state(user_id, room_id) for room_id in room_ids}


def _no_filter() -> Any:
    from homeserver.handlers.room_read import RoomEventFilter

    return RoomEventFilter()


def _groups(results: list[dict[str, Any]], group_by: set[str]) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for key, field in (("room_id", "room_id"), ("sender", "sender")):
        if key not in group_by:
            continue
        buckets: dict[str, Any] = {}
        for index, result in enumerate(results):
            bucket = buckets.setdefault(result["result"][field], {"results": [], "order": index + 1})
            bucket["results"].append(result["result"]["event_id"])
        groups[key] = buckets
    return groups


def _parse_batch(token: str | None) -> int:
    if token is None:
        return 0
    digits = token[1:]
    if token.startswith("o") and digits.isascii() and digits.isdigit() and int(digits) < 2**63:
        return int(digits)
    raise MatrixError(400, "Invalid next_batch token", "M_INVALID_PARAM")
