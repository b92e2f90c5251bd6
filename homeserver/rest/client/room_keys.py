"""Server-side key backup servlets: `/room_keys/version[/{version}]` and
`/room_keys/keys[/{roomId}[/{sessionId}]]?version=`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object, parse_string


class RoomKeysNewVersionServlet(RestServlet):
    """`/room_keys/version`: create a backup version, or describe the newest."""

    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        return 200, await self.hs.e2e_room_keys_handler.create_version(requester.user_id, body)

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.e2e_room_keys_handler.get_version(requester.user_id, None)


class RoomKeysVersionServlet(RestServlet):
    """`/room_keys/version/{version}`."""

    async def on_GET(self, request: HomeserverRequest, version: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, await self.hs.e2e_room_keys_handler.get_version(requester.user_id, version)

    async def on_PUT(self, request: HomeserverRequest, version: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        await self.hs.e2e_room_keys_handler.update_version(requester.user_id, version, body)
        return 200, {}

    async def on_DELETE(self, request: HomeserverRequest, version: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        await self.hs.e2e_room_keys_handler.delete_version(requester.user_id, version)
        return 200, {}


class RoomKeysServlet(RestServlet):
    """All keys of a backup, one room's, or one session's: the body of a PUT is shaped like
    the response of the matching GET."""

    async def on_GET(self, request: HomeserverRequest, room_id: str | None = None, session_id: str | None = None) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        version = parse_string(request, "version")
        return 200, await self.hs.e2e_room_keys_handler.get_keys(requester.user_id, version, room_id, session_id)

    async def on_PUT(self, request: HomeserverRequest, room_id: str | None = None, session_id: str | None = None) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        version = parse_string(request, "version")
        body: Any = parse_json_object(request)
        if session_id is not None:
            body = {"sessions": {session_id: body}}
        if room_id is not None:
            body = {"rooms": {room_id: body}}
        return 200, await self.hs.e2e_room_keys_handler.upload_keys(requester.user_id, version, body.get("rooms"))

    async def on_DELETE(self, request: HomeserverRequest, room_id: str | None = None, session_id: str | None = None) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        version = parse_string(request, "version")
        return 200, await self.hs.e2e_room_keys_handler.delete_keys(requester.user_id, version, room_id, session_id)

