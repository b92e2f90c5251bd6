"""The legacy `/initialSync`, `/rooms/{roomId}/initialSync` and `/events`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_boolean, parse_integer, parse_string
from homeserver.notifier import WaitSuperseded

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
    def __init__(self, hs: Any):
        super().__init__(hs)
        hs.notifier.max_waiting_per_user = hs.config.server.max_waiting_syncs_per_user

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        timeout = min(parse_integer(request, "timeout", default=30000, minimum=0), MAX_TIMEOUT_MS)
        from_token = parse_string(request, "from", default=None)
        try:
            return 200, await self.hs.initial_sync_handler.events(requester.user_id, from_token, timeout)
        except WaitSuperseded as e:
            # Superseded by newer long-polls of the same user: nothing new, same token.
            token = from_token or e.known.encode()
            return 200, {"chunk": [], "start": token, "end": token}
