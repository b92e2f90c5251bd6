"""`/search`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object, parse_string


class SearchServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        next_batch = parse_string(request, "next_batch", default=None)
        return 200, await self.hs.search_handler.search(requester.user_id, body, next_batch)
