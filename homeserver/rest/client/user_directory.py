"""`/user_directory/search`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object

DEFAULT_LIMIT = 10


class UserDirectorySearchServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        term = body_field(body, "search_term", str)
        limit = body_field(body, "limit", int, required=False, default=DEFAULT_LIMIT)
        return 200, await self.hs.user_directory_handler.search(requester.user_id, term, limit)
