"""Profiles: `/profile/{userId}` and `/profile/{userId}/{displayname|avatar_url}`."""

from typing import Any

from homeserver.http.errors import missing_param
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object


class _ProfileReadServlet(RestServlet):
    async def _requester_id(self, request: HomeserverRequest) -> str | None:
        """Lookups need an access token only with `require_auth_for_profile_requests`."""
        if not self.hs.config.server.require_auth_for_profile_requests:
            return None
        return (await self.hs.auth.get_user_by_req(request)).user_id


class ProfileServlet(_ProfileReadServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str) -> tuple[int, Any]:
        requester_id = await self._requester_id(request)
        return 200, await self.hs.profile_handler.get_profile(requester_id, user_id)


class ProfileFieldServlet(_ProfileReadServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str, field: str) -> tuple[int, Any]:
        requester_id = await self._requester_id(request)
        return 200, await self.hs.profile_handler.get_field(requester_id, user_id, field)

    async def on_PUT(self, request: HomeserverRequest, user_id: str, field: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        if field not in body:
            raise missing_param(field)
        await self.hs.profile_handler.set_field(requester, user_id, field, body[field])
        return 200, {}
