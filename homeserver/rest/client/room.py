"""Room servlets: createRoom, membership, sending, state, single events, members, `/messages`
and `/context`."""

import json
from typing import Any

from homeserver.events.serialize import serialize_event
from homeserver.handlers.room_read import RoomEventFilter
from homeserver.http.auth import Requester
from homeserver.http.errors import MatrixError
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import (
    RestServlet,
    body_field,
    parse_integer,
    parse_json_object,
    parse_string,
    query_arg,
)
from homeserver.util.clock import now_ms


def _txn(requester: Requester, txn_id: str, endpoint: str) -> tuple[str, str, str]:
    """Transaction ids are scoped to the device (or the token when there is none) and the
    endpoint: the same id on another path (room, event type, redacted event) is a new request."""
    return requester.user_id, f"{requester.device_id or requester.access_token} {endpoint}", txn_id


class CreateRoomServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        room_id, alias = await self.hs.room_creation_handler.create_room(requester, body)
        response = {"room_id": room_id}
        if alias:
            response["room_alias"] = alias
        return 200, response


class JoinServlet(RestServlet):
    """`/join/{roomIdOrAlias}` and `/rooms/{roomId}/join`."""

    action = "join"

    def __init__(self, hs: Any):
        super().__init__(hs)
        self.join_limiter = hs.ratelimiter("rc_joins.local")

    async def on_POST(self, request: HomeserverRequest, room: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        reason = body_field(body, "reason", str, required=False)
        room_id = await self.hs.membership_handler.resolve_room_id(room)
        if self.action == "join":
            # Joining a room one is already in (a profile refresh) is not a new join.
            current = await self.hs.stores.members.get_memberships_in_rooms(requester.user_id, [room_id])
            if current.get(room_id) != "join":
                self.join_limiter.check(requester.user_id)
        await self.hs.membership_handler.update_membership(requester, requester.user_id, room_id, self.action, reason)
        return 200, {"room_id": room_id}


class KnockServlet(JoinServlet):
    """`/knock/{roomIdOrAlias}`."""

    action = "knock"


class MembershipServlet(RestServlet):
    """`/rooms/{roomId}/(invite|leave|kick|ban|unban|forget)`."""

    def __init__(self, hs: Any):
        super().__init__(hs)
        # rc_invites: invites into one room, to one user, and by one user.
        self.invite_limiters = [(hs.ratelimiter(f"rc_invites.{part}"), part)
                                for part in ("per_room", "per_user", "per_issuer")]

    def _check_invite(self, room_id: str, target: str, inviter: str) -> None:
        keys = {"per_room": room_id, "per_user": target, "per_issuer": inviter}
        for limiter, part in self.invite_limiters:  # all must allow it before any counts it
            limiter.check(keys[part], update=False)
        for limiter, part in self.invite_limiters:
            limiter.record(keys[part])

    async def on_POST(self, request: HomeserverRequest, room_id: str, action: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        handler = self.hs.membership_handler
        if action == "forget":
            await handler.forget(requester, room_id)
            return 200, {}
        reason = body_field(body, "reason", str, required=False)
        if action == "leave":
            target = requester.user_id
        else:
            if "id_server" in body or "medium" in body:
                raise MatrixError(400, "Third-party invites are not supported", "M_UNRECOGNIZED")
            target = body_field(body, "user_id", str)
        if action == "invite":
            self._check_invite(room_id, target, requester.user_id)
        await handler.update_membership(requester, target, room_id, action, reason)
        return 200, {}


class JoinedRoomsServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, {"joined_rooms": await self.hs.stores.members.get_rooms_for_user(requester.user_id)}


class SendEventServlet(RestServlet):
    def __init__(self, hs: Any):
        super().__init__(hs)
        self.ratelimiter = hs.ratelimiter("rc_message")

    async def on_PUT(self, request: HomeserverRequest, room_id: str, event_type: str, txn_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        content = parse_json_object(request)
        txn = _txn(requester, txn_id, f"send/{room_id}/{event_type}")
        if not self.ratelimiter.can_do(requester.user_id)[0]:
            # A retry of a send that went through is answered, limited or not.
            earlier = await self.hs.stores.events.get_event_id_for_txn(*txn)
            if earlier is not None:
                return 200, {"event_id": earlier}
        self.ratelimiter.check(requester.user_id)
        event = await self.hs.event_creation_handler.create_and_send(
            {"type": event_type, "room_id": room_id, "sender": requester.user_id, "content": content}, txn=txn,
        )
        return 200, {"event_id": event.event_id}


class RedactServlet(RestServlet):
    async def on_PUT(self, request: HomeserverRequest, room_id: str, event_id: str, txn_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        content = parse_json_object(request, allow_empty=True)
        body_field(content, "reason", str, required=False)
        event = await self.hs.event_creation_handler.redact(requester, room_id, event_id, content, _txn(requester, txn_id, f"redact/{room_id}/{event_id}"))
        return 200, {"event_id": event.event_id}


class RoomStateServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.room_read_handler.get_state(requester.user_id, room_id)


class RoomStateEventServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str, event_type: str, state_key: str = "") -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        event = await self.hs.room_read_handler.get_state_event(requester.user_id, room_id, event_type, state_key)
        if parse_string(request, "format", default="content", allowed=["content", "event"]) == "event":
            return 200, serialize_event(event, now_ms())
        return 200, event.content

    async def on_PUT(self, request: HomeserverRequest, room_id: str, event_type: str, state_key: str = "") -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        content = parse_json_object(request)
        event = await self.hs.event_creation_handler.create_and_send(
            {"type": event_type, "room_id": room_id, "sender": requester.user_id, "state_key": state_key, "content": content},
        )
        return 200, {"event_id": event.event_id}


class RoomEventServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.room_read_handler.get_event(requester.user_id, room_id, event_id)


class MembersServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        memberships = ["join", "invite", "leave", "ban", "knock"]
        chunk = await self.hs.room_read_handler.get_members(
            requester.user_id, room_id,
            parse_string(request, "membership", default=None, allowed=memberships),
            parse_string(request, "not_membership", default=None, allowed=memberships),
            parse_string(request, "at", default=None),
        )
        return 200, {"chunk": chunk}


class JoinedMembersServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.room_read_handler.get_joined_members(requester.user_id, room_id)


def _parse_filter(request: HomeserverRequest) -> RoomEventFilter:
    raw = query_arg(request, "filter")
    if raw is None:
        return RoomEventFilter()
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise MatrixError(400, "filter is not valid JSON", "M_INVALID_PARAM") from e
    return RoomEventFilter.from_json(value)


class MessagesServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.room_read_handler.get_messages(
            requester.user_id, room_id,
            parse_string(request, "from", default=None), parse_string(request, "to", default=None),
            parse_string(request, "dir", default="b", allowed=["b", "f"]),
            parse_integer(request, "limit", default=10, minimum=0), _parse_filter(request),
        )


class ContextServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        limit = min(parse_integer(request, "limit", default=10, minimum=0), 100)
        return 200, await self.hs.room_read_handler.get_context(requester.user_id, room_id, event_id, limit, _parse_filter(request))


