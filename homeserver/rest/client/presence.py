"""`GET` and `PUT /presence/{userId}/status`."""

from typing import Any

from homeserver.http.errors import bad_json
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object


class PresenceStatusServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.presence_handler.get_status(requester.user_id, user_id)

    async def on_PUT(self, request: HomeserverRequest, user_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        unknown = sorted(set(body) - {"presence", "status_msg"})
        if unknown:
            raise bad_json(f"Unknown fields: {', '.join(unknown)}")
        presence = body_field(body, "presence", str)
        status_msg = body_field(body, "status_msg", str, required=False)
        await self.hs.presence_handler.set_status(requester.user_id, user_id, presence, status_msg)
        return 200, {}
