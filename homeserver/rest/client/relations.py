"""`/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]` and `/rooms/{roomId}/threads`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_boolean, parse_integer, parse_string


class RelationsServlet(RestServlet):
    async def on_GET(
        self, request: HomeserverRequest, room_id: str, event_id: str, rel_type: str | None = None,
        event_type: str | None = None,
    ) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.relations_handler.get_relations(
            requester.user_id, room_id, event_id, rel_type, event_type,
            parse_string(request, "from", default=None), parse_string(request, "to", default=None),
            parse_string(request, "dir", default="b", allowed=["b", "f"]),
            parse_integer(request, "limit", default=50, minimum=0), parse_boolean(request, "recurse", default=False),
        )


class ThreadsServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.relations_handler.get_threads(
            requester.user_id, room_id,
            parse_string(request, "include", default="all", allowed=["all", "participated"]),
            parse_string(request, "from", default=None), parse_integer(request, "limit", default=50, minimum=0),
        )
