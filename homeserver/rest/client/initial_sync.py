"""The legacy `/initialSync`, `/rooms/{roomId}/initialSync` and `/events`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_boolean, parse_integer, parse_string

MAX_TIMEOUT_MS = 5 * 60 * 1000


class InitialSyncServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        limit = min(parse_integer(request, "limit", default=10, minimum=0), 100)
        return 200, await self.hs.initial_sync_handler.initial_sync(
            requester.user_id, limit, parse_boolean(request, "archived", default=False)
        )


class RoomInitialSyncServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        limit = min(parse_integer(request, "limit", default=10, minimum=0), 100)
        return 200, await self.hs.initial_sync_handler.room_snapshot(requester.user_id, room_id, limit)


class EventsServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        timeout = min(parse_integer(request, "timeout", default=30000, minimum=0), MAX_TIMEOUT_MS)
        return 200, await self.hs.initial_sync_handler.events(
            requester.user_id, parse_string(request, "from", default=None), timeout
        )
