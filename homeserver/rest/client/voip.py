"""`/voip/turnServer`: TURN server credentials for calls."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet


class TurnServerServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=self.hs.config.voip.turn_allow_guests)
        return 200, self.hs.voip_handler.turn_server(requester.user_id)
