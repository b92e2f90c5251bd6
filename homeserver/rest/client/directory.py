"""Aliases (`/directory/room/{alias}`, `/rooms/{roomId}/aliases`), directory visibility
(`/directory/list/room/{roomId}`) and `/publicRooms`."""

from typing import Any

from homeserver.http.errors import MatrixError
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import (
    RestServlet,
    body_field,
    parse_integer,
    parse_json_object,
    parse_string,
)


class AliasServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, alias: str) -> tuple[int, Any]:
        return 200, await self.hs.directory_handler.get_alias(alias)

    async def on_PUT(self, request: HomeserverRequest, alias: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        room_id = body_field(body, "room_id", str)
        await self.hs.directory_handler.create_alias(requester, alias, room_id)
        return 200, {}

    async def on_DELETE(self, request: HomeserverRequest, alias: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        await self.hs.directory_handler.delete_alias(requester, alias)
        return 200, {}


class RoomAliasesServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        return 200, {"aliases": await self.hs.directory_handler.get_room_aliases(requester.user_id, room_id)}


class DirectoryVisibilityServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        return 200, {"visibility": await self.hs.directory_handler.get_visibility(room_id)}

    async def on_PUT(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        visibility = body_field(body, "visibility", str, required=False, default="public")
        if visibility not in ("public", "private"):
            raise MatrixError(400, "visibility must be 'public' or 'private'", "M_INVALID_PARAM")
        await self.hs.directory_handler.set_visibility(requester, room_id, visibility)
        return 200, {}


class PublicRoomsServlet(RestServlet):
    def _check_server(self, server: str | None) -> None:
        if server is not None and server != self.hs.hostname:
            raise MatrixError(404, "Room directories of other servers need federation, which is not available", "M_NOT_FOUND")

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        self._check_server(parse_string(request, "server", default=None))
        limit = parse_integer(request, "limit", default=None, minimum=0)
        since = parse_string(request, "since", default=None)
        return 200, await self.hs.directory_handler.public_rooms(limit, since, None)

    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        await self.hs.auth.get_user_by_req(request)
        self._check_server(parse_string(request, "server", default=None))
        body = parse_json_object(request, allow_empty=True)
        limit = body_field(body, "limit", int, required=False)
        since = body_field(body, "since", str, required=False)
        search_filter = body_field(body, "filter", dict, required=False, default={})
        term = search_filter.get("generic_search_term")
        if term is not None and not isinstance(term, str):
            raise MatrixError(400, "filter.generic_search_term must be a string", "M_BAD_JSON")
        room_types = search_filter.get("room_types")
        if room_types is not None and (
            not isinstance(room_types, list) or not all(t is None or isinstance(t, str) for t in room_types)
        ):
            raise MatrixError(400, "filter.room_types must be a list of strings or nulls", "M_BAD_JSON")
        return 200, await self.hs.directory_handler.public_rooms(limit, since, term, room_types)
