"""`/devices`, `/devices/{deviceId}` and `/delete_devices`."""

from typing import Any

from homeserver.handlers.auth import LOGIN_TYPE_PASSWORD
from homeserver.http.errors import bad_json, invalid_param
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object


class DevicesServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        return 200, {"devices": await self.hs.device_handler.list_devices(requester.user_id)}


class DeviceServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, device_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        return 200, await self.hs.device_handler.get_device(requester.user_id, device_id)

    async def on_PUT(self, request: HomeserverRequest, device_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request)
        display_name = body_field(body, "display_name", str, required=False)
        await self.hs.device_handler.rename_device(requester.user_id, device_id, display_name)
        return 200, {}

    async def on_DELETE(self, request: HomeserverRequest, device_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        await self.hs.device_handler.get_device(requester.user_id, device_id)
        await self.hs.auth_handler.check_ui_auth(
            [[LOGIN_TYPE_PASSWORD]], body, request.path.decode(), "DELETE", "remove a device",
            requester_user_id=requester.user_id,
        )
        await self.hs.device_handler.delete_devices(requester.user_id, [device_id])
        return 200, {}


class DeleteDevicesServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        devices = body_field(body, "devices", list)
        if not all(isinstance(d, str) for d in devices):
            raise bad_json("'devices' must be a list of device ids")
        if any("\x00" in d for d in devices):
            # No device id has one, and the database refuses NUL in a query parameter.
            raise invalid_param("'devices' must not contain NUL characters")
        result = await self.hs.auth_handler.check_ui_auth(
            [[LOGIN_TYPE_PASSWORD]], body, request.path.decode(), "POST", "remove devices",
            requester_user_id=requester.user_id,
        )
        await self.hs.device_handler.delete_devices(requester.user_id, result.params.get("devices", devices))
        return 200, {}
