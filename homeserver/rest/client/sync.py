"""`/sync` and sync filters (`/user/{userId}/filter`)."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import (
    RestServlet,
    parse_boolean,
    parse_integer,
    parse_json_object,
    parse_string,
)

MAX_TIMEOUT_MS = 5 * 60 * 1000


class SyncServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        set_presence = parse_string(request, "set_presence", default="online", allowed=["online", "offline", "unavailable"])
        timeout = min(parse_integer(request, "timeout", default=0, minimum=0), MAX_TIMEOUT_MS)
        async with self.hs.presence_handler.user_syncing(requester.user_id, set_presence):
            return 200, await self.hs.sync_handler.sync(
                requester,
                parse_string(request, "since", default=None),
                timeout,
                parse_boolean(request, "full_state", default=False),
                parse_string(request, "filter", default=None),
            )


class FilterUploadServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest, user_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request)
        filter_id = await self.hs.filter_handler.upload(requester.user_id, user_id, body)
        return 200, {"filter_id": str(filter_id)}


class FilterServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str, filter_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        return 200, await self.hs.filter_handler.get(requester.user_id, user_id, filter_id)
