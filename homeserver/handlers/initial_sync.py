"""The legacy sync APIs: `/initialSync`, `/rooms/{roomId}/initialSync` and the `/events`
long-poll. They predate `/sync`; clients still use the room snapshot for previews."""

from typing import TYPE_CHECKING, Any

from homeserver.handlers.room_read import RoomEventFilter, encode_token
from homeserver.http.errors import forbidden
from homeserver.storage.stores.events import TopologicalPosition
from homeserver.tokens import StreamToken

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAX_EVENTS = 100


class InitialSyncHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stores = hs.stores

    async def room_snapshot(self, user_id: str, room_id: str, limit: int) -> dict[str, Any]:
        """State and latest messages of one room, as the user may see them."""
        membership = await self.stores.members.get_membership(room_id, user_id)
        read = self.hs.room_read_handler
        if membership is None and not await self.hs.visibility_handler.is_world_readable(room_id):
            raise forbidden("You are not allowed to view this room")
        state = await read.get_state(user_id, room_id)
        from_token = None
        if membership is not None and membership[0] in ("leave", "ban"):
            # Only what the user could see until they left, their leave included.
            position = await self.stores.events.get_position(membership[1])
            if position is not None:
                from_token = encode_token(TopologicalPosition(position.topological, position.stream + 1))
        messages = await read.get_messages(user_id, room_id, from_token, None, "b", limit, RoomEventFilter())
        chunk = list(reversed(messages["chunk"]))
        room = await self.stores.rooms.get_room(room_id)
        return {
            "room_id": room_id,
            "membership": membership[0] if membership else "leave",
            "messages": {"chunk": chunk, "start": messages.get("end", messages["start"]), "end": messages["start"]},
            "state": state,
            "presence": [],
            "account_data": [],
            "visibility": "public" if room and room.is_public else "private",
        }

    async def initial_sync(self, user_id: str, limit: int, archived: bool) -> dict[str, Any]:
        memberships = await self.stores.members.get_memberships_for_user(user_id)
        wanted = ("join", "invite", "leave", "ban") if archived else ("join", "invite")
        rooms = []
        for room_id, membership, event_id, _ in memberships:
            if membership not in wanted:
                continue
            if membership == "invite":
                invite = await self.stores.events.get_event(event_id)
                entry: dict[str, Any] = {"room_id": room_id, "membership": "invite"}
                if invite is not None:
                    entry["invite"] = self.hs.room_read_handler.serialize([invite])[0]
                rooms.append(entry)
                continue
            rooms.append(await self.room_snapshot(user_id, room_id, limit))
        return {
            "end": self.hs.sync_handler.current_token().encode(),
            "rooms": rooms,
            "presence": [],
            "account_data": [],
        }

    async def events(self, user_id: str, from_token: str | None, timeout_ms: int) -> dict[str, Any]:
        """Room events after `from_token` in the user's joined rooms, long-polling up to the timeout."""
        sync = self.hs.sync_handler
        start = StreamToken.parse(from_token) if from_token else sync.current_token()
        rooms = await self.stores.members.get_rooms_for_user(user_id)
        now = sync.current_token()
        ids = await self.stores.timeline.get_event_ids_between(rooms, start.events, now.events, MAX_EVENTS)
        if not ids and timeout_ms > 0:
            await self.hs.notifier.wait_for_change(user_id, rooms, now, timeout_ms)
            now = sync.current_token()
            ids = await self.stores.timeline.get_event_ids_between(rooms, start.events, now.events, MAX_EVENTS)
        fetched = await self.stores.events.get_events(ids)
        events = await self.hs.visibility_handler.filter_events_for_user(user_id, [fetched[i] for i in ids if i in fetched])
        end = now
        if len(ids) == MAX_EVENTS:
            end = now.copy_and_replace("events", fetched[ids[-1]].internal_metadata["stream_ordering"])
        return {"chunk": self.hs.room_read_handler.serialize(events), "start": start.encode(), "end": end.encode()}
