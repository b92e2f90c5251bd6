"""Account data and room tags: `/user/{userId}/account_data/{type}`,
`/user/{userId}/rooms/{roomId}/account_data/{type}` and `/user/{userId}/rooms/{roomId}/tags`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object


class AccountDataServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str, data_type: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.account_data_handler.get_for_client(requester.user_id, user_id, None, data_type)

    async def on_PUT(self, request: HomeserverRequest, user_id: str, data_type: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        content = parse_json_object(request)
        await self.hs.account_data_handler.put_for_client(requester.user_id, user_id, None, data_type, content)
        return 200, {}


class RoomAccountDataServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str, room_id: str, data_type: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.account_data_handler.get_for_client(requester.user_id, user_id, room_id, data_type)

    async def on_PUT(self, request: HomeserverRequest, user_id: str, room_id: str, data_type: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        content = parse_json_object(request)
        await self.hs.account_data_handler.put_for_client(requester.user_id, user_id, room_id, data_type, content)
        return 200, {}


class TagsServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, {"tags": await self.hs.account_data_handler.get_tags(requester.user_id, user_id, room_id)}


class TagServlet(RestServlet):
    async def on_PUT(self, request: HomeserverRequest, user_id: str, room_id: str, tag: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        content = parse_json_object(request)
        await self.hs.account_data_handler.add_tag(requester.user_id, user_id, room_id, tag, content)
        return 200, {}

    async def on_DELETE(self, request: HomeserverRequest, user_id: str, room_id: str, tag: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        await self.hs.account_data_handler.remove_tag(requester.user_id, user_id, room_id, tag)
        return 200, {}
