"""Reading rooms: single events, state, members, `/messages` pagination and `/context`,
each filtered by history visibility."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.events.serialize import serialize_event
from homeserver.http.errors import MatrixError, forbidden, not_found
from homeserver.storage.stores.events import TopologicalPosition
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAX_LIMIT = 1000


def encode_token(position: TopologicalPosition) -> str:
    return f"t{position.topological}-{position.stream}"


def parse_token(token: str) -> tuple[str, int, int]:
    """('t', topological, stream) or ('s', 0, stream); M_INVALID_PARAM for anything else."""
    try:
        if token.startswith("t"):
            topological, stream = token[1:].split("-", 1)
            return "t", int(topological), int(stream)
        if token.startswith("s"):
            return "s", 0, int(token[1:].split("_", 1)[0])
    except ValueError:
        pass
    raise MatrixError(400, f"Invalid pagination token {token!r}", "M_INVALID_PARAM")


@dataclass
class RoomEventFilter:
    """The parts of a RoomEventFilter that pagination applies in the database."""

    types: list[str] | None = None
    not_types: list[str] | None = None
    senders: list[str] | None = None
    not_senders: list[str] | None = None
    lazy_load_members: bool = False

    @classmethod
    def from_json(cls, value: Any) -> "RoomEventFilter":
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise MatrixError(400, "filter must be a JSON object", "M_INVALID_PARAM")
        lists = {}
        for key in ("types", "not_types", "senders", "not_senders"):
            item = value.get(key)
            if item is not None and (not isinstance(item, list) or not all(isinstance(v, str) for v in item)):
                raise MatrixError(400, f"filter.{key} must be a list of strings", "M_INVALID_PARAM")
            lists[key] = item
        return cls(**lists, lazy_load_members=bool(value.get("lazy_load_members")))


class RoomReadHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stores = hs.stores

    def serialize(self, events: list[Event], include_room_id: bool = True) -> list[dict[str, Any]]:
        now = now_ms()
        return [serialize_event(e, now, include_room_id=include_room_id) for e in events]

    async def _require_room(self, room_id: str) -> None:
        if await self.stores.rooms.get_room_version(room_id) is None:
            raise forbidden("You are not allowed to view this room")

    async def get_event(self, user_id: str, room_id: str, event_id: str) -> dict[str, Any]:
        event = await self.stores.events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        visible = await self.hs.visibility_handler.filter_events_for_user(user_id, [event])
        if not visible or await self._has_forgotten(user_id, room_id):
            raise not_found("Event not found")
        return (await self.hs.relations_handler.serialize_with_bundles(user_id, visible))[0]

    async def _has_forgotten(self, user_id: str, room_id: str) -> bool:
        """Whether the user forgot the room (left, then /forget) and it is not world-readable."""
        membership = await self.stores.members.get_membership(room_id, user_id)
        return membership is not None and membership[0] in ("leave", "ban") \
            and await self.stores.members.is_forgotten(user_id, room_id) \
            and not await self.hs.visibility_handler.is_world_readable(room_id)

    async def _readable_state_ids(self, user_id: str, room_id: str) -> dict[tuple[str, str], str]:
        """Current state when joined or world-readable; the state when the user left otherwise."""
        await self._require_room(room_id)
        membership = await self.stores.members.get_membership(room_id, user_id)
        if (membership and membership[0] == "join") or await self.hs.visibility_handler.is_world_readable(room_id):
            return await self.stores.state.get_current_state_ids(room_id)
        if membership and membership[0] in ("leave", "ban") and not await self.stores.members.is_forgotten(user_id, room_id):
            states = await self.stores.state.get_state_after_events([membership[1]])
            return dict(states.get(membership[1], {}))
        raise forbidden("You are not allowed to view this room")

    async def get_state(self, user_id: str, room_id: str) -> list[dict[str, Any]]:
        state_ids = await self._readable_state_ids(user_id, room_id)
        events = await self.stores.events.get_events(state_ids.values())
        return self.serialize([events[e] for e in state_ids.values() if e in events])

    async def get_state_event(self, user_id: str, room_id: str, etype: str, state_key: str) -> Event:
        state_ids = await self._readable_state_ids(user_id, room_id)
        event_id = state_ids.get((etype, state_key))
        event = await self.stores.events.get_event(event_id) if event_id else None
        if event is None:
            raise not_found("Event not found")
        return event

    async def get_members(
        self, user_id: str, room_id: str, membership: str | None, not_membership: str | None, at: str | None
    ) -> list[dict[str, Any]]:
        state_ids = await self._readable_state_ids(user_id, room_id)
        if at is not None:
            state_ids = await self._state_at_token(room_id, at, state_ids)
        member_ids = [e for (t, _), e in state_ids.items() if t == "m.room.member"]
        events = await self.stores.events.get_events(member_ids)
        chosen = [
            events[e] for e in member_ids if e in events
            and (membership is None or events[e].membership == membership)
            and (not_membership is None or events[e].membership != not_membership)
        ]
        chosen.sort(key=lambda e: e.state_key or "")
        return self.serialize(chosen)

    async def _state_at_token(self, room_id: str, token: str, fallback: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        position = await self._resolve_token(room_id, token)
        ids = await self.stores.events.get_room_timeline(room_id, TopologicalPosition(position.topological, position.stream + 1),
                                                          None, True, 1)
        if not ids:
            return fallback
        states = await self.stores.state.get_state_after_events(ids)
        return dict(states.get(ids[0], fallback))

    async def get_joined_members(self, user_id: str, room_id: str) -> dict[str, Any]:
        await self._require_room(room_id)
        if not await self.hs.visibility_handler.can_see_room_state(user_id, room_id):
            raise forbidden("You aren't a member of the room")
        state_ids = await self.stores.state.get_current_state_ids(room_id)
        events = await self.stores.events.get_events(e for (t, _), e in state_ids.items() if t == "m.room.member")
        joined = {}
        for event in events.values():
            if event.membership == "join" and event.state_key:
                joined[event.state_key] = {
                    "display_name": event.content.get("displayname"), "avatar_url": event.content.get("avatar_url"),
                }
        return {"joined": joined}

    # --- pagination ------------------------------------------------------------------------

    async def _resolve_token(self, room_id: str, token: str) -> TopologicalPosition:
        kind, topological, stream = parse_token(token)
        if kind == "t":
            return TopologicalPosition(topological, stream)
        return await self.stores.events.position_at_stream(room_id, stream)

    async def _check_can_read_history(self, user_id: str, room_id: str) -> None:
        await self._require_room(room_id)
        membership = await self.stores.members.get_membership(room_id, user_id)
        # Invited and knocking users see only the stripped state of their invite, as in Synapse.
        member = membership is not None and membership[0] in ("join", "leave", "ban")
        if not member and not await self.hs.visibility_handler.is_world_readable(room_id):
            raise forbidden("You are not allowed to view this room")
        if await self._has_forgotten(user_id, room_id):
            raise forbidden("You have forgotten this room")

    async def get_messages(
        self, user_id: str, room_id: str, from_token: str | None, to_token: str | None, direction: str,
        limit: int, event_filter: RoomEventFilter,
    ) -> dict[str, Any]:
        await self._check_can_read_history(user_id, room_id)
        backwards = direction == "b"
        limit = max(0, min(limit, MAX_LIMIT))
        if from_token is None and backwards:
            # From the end of the room: a token for the present, usable later (`to`, `at`, dir=f).
            from_token = f"s{await self.stores.events.get_max_stream_ordering()}"
        start = await self._resolve_token(room_id, from_token) if from_token else None
        end_bound = await self._resolve_token(room_id, to_token) if to_token else None
        if start is None:
            start = TopologicalPosition(0, 0)
        if end_bound is not None:  # Tokens sit at an event: `to` includes it, as `from` excludes it.
            end_bound = TopologicalPosition(end_bound.topological, end_bound.stream + (-1 if backwards else 1))
        before, after = (start, end_bound) if backwards else (end_bound, start)
        ids = await self.stores.events.get_room_timeline(
            room_id, before, after, backwards, limit, event_filter.types, event_filter.not_types,
            event_filter.senders, event_filter.not_senders,
        )
        events_by_id = await self.stores.events.get_events(ids)
        events = [events_by_id[i] for i in ids if i in events_by_id]
        visible = await self.hs.visibility_handler.filter_events_for_user(user_id, events)
        response: dict[str, Any] = {
            "chunk": await self.hs.relations_handler.serialize_with_bundles(user_id, visible),
            "start": from_token or encode_token(start),
        }
        if len(ids) == limit and ids:
            last = events_by_id[ids[-1]]
            response["end"] = encode_token(_position(last))
        if event_filter.lazy_load_members and visible:
            response["state"] = await self._member_state_for(room_id, visible)
        return response

    async def _member_state_for(self, room_id: str, events: list[Event]) -> list[dict[str, Any]]:
        senders = {e.sender for e in events}
        # At the newest event of the page, in either direction: every sender is a member by then.
        newest = max(events, key=_position)
        states = await self.stores.state.get_state_after_events([newest.event_id])
        state = states.get(newest.event_id, {})
        ids = [state[("m.room.member", s)] for s in senders if ("m.room.member", s) in state]
        members = await self.stores.events.get_events(ids)
        return self.serialize(list(members.values()))

    async def get_context(self, user_id: str, room_id: str, event_id: str, limit: int, event_filter: RoomEventFilter) -> dict[str, Any]:
        await self._require_room(room_id)
        event = await self.stores.events.get_event(event_id)
        if event is None or event.room_id != room_id or not await self.hs.visibility_handler.filter_events_for_user(user_id, [event]) \
                or await self._has_forgotten(user_id, room_id):
            raise not_found("Event not found")
        position = _position(event)
        half_before = limit // 2
        half_after = limit - half_before
        store = self.stores.events
        args = (event_filter.types, event_filter.not_types, event_filter.senders, event_filter.not_senders)
        before_ids = await store.get_room_timeline(room_id, position, None, True, half_before, *args)
        after_ids = await store.get_room_timeline(room_id, None, position, False, half_after, *args)
        fetched = await store.get_events(before_ids + after_ids)
        visibility = self.hs.visibility_handler
        before = await visibility.filter_events_for_user(user_id, [fetched[i] for i in before_ids if i in fetched])
        after = await visibility.filter_events_for_user(user_id, [fetched[i] for i in after_ids if i in fetched])
        # The state at the last event returned, as the spec says (and Synapse does).
        last_id = after[-1].event_id if after else event_id
        state_ids = (await self.stores.state.get_state_after_events([last_id])).get(last_id, {})
        state_events = await store.get_events(state_ids.values())
        bundles = self.hs.relations_handler.serialize_with_bundles
        return {
            "event": (await bundles(user_id, [event]))[0],
            "events_before": await bundles(user_id, before),
            "events_after": await bundles(user_id, after),
            "start": encode_token(_position(fetched[before_ids[-1]]) if before_ids else position),
            "end": encode_token(_position(fetched[after_ids[-1]]) if after_ids else position),
            "state": self.serialize(list(state_events.values())),
        }


def _position(event: Event) -> TopologicalPosition:
    return TopologicalPosition(event.internal_metadata["topological_ordering"], event.internal_metadata["stream_ordering"])
