"""`GET /notifications`: the events the user was notified about, newest first."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_integer, parse_string


class NotificationsServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        from_token = parse_string(request, "from", default=None)
        limit = parse_integer(request, "limit", default=None, minimum=0)
        only = parse_string(request, "only", default=None)
        return 200, await self.hs.notifications_handler.get_notifications(requester.user_id, from_token, limit, only)
