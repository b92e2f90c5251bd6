"""`/rooms/{roomId}/hierarchy` and the room summary endpoint (stable and unstable paths)."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_boolean, parse_integer, parse_string


class HierarchyServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.hierarchy_handler.get_hierarchy(
            requester.user_id, room_id,
            parse_integer(request, "limit", default=None, minimum=1),
            parse_integer(request, "max_depth", default=None, minimum=0),
            parse_string(request, "from", default=None),
            parse_boolean(request, "suggested_only", default=False),
        )


class RoomSummaryServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room: str) -> tuple[int, Any]:
        user_id = None
        if request.getHeader("authorization") or parse_string(request, "access_token", default=None):
            user_id = (await self.hs.auth.get_user_by_req(request, allow_guest=True)).user_id
        return 200, await self.hs.hierarchy_handler.get_summary(user_id, room)
