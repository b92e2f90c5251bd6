"""`PUT /rooms/{roomId}/typing/{userId}`."""

from typing import Any

from homeserver.handlers.typing import DEFAULT_TIMEOUT_MS
from homeserver.http.errors import bad_json
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object


class TypingServlet(RestServlet):
    async def on_PUT(self, request: HomeserverRequest, room_id: str, user_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        typing = body_field(body, "typing", bool)
        timeout = body_field(body, "timeout", int, required=False, default=DEFAULT_TIMEOUT_MS)
        if timeout < 0:
            raise bad_json("'timeout' must not be negative")
        await self.hs.typing_handler.set_typing(requester, room_id, user_id, typing, timeout)
        return 200, {}
