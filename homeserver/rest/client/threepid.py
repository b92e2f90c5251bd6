"""`/account/3pid`: the third-party identifiers (email, phone) bound to the account."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet


class ThreepidsServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, {"threepids": await self.hs.account_handler.get_threepids(requester.user_id)}
