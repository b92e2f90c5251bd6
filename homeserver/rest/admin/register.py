"""`/_synapse/admin/v1/register`: create users with the registration shared secret (nonce + HMAC)."""

from typing import Any

from homeserver.http.errors import MatrixError
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object


class SharedSecretRegisterServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        if not self.hs.config.registration.registration_shared_secret:
            raise MatrixError(400, "Shared secret registration is not enabled", "M_UNKNOWN")
        return 200, {"nonce": await self.hs.registration_handler.new_nonce()}

    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        nonce = body_field(body, "nonce", str)
        username = body_field(body, "username", str)
        password = body_field(body, "password", str)
        mac = body_field(body, "mac", str)
        admin = body_field(body, "admin", bool, required=False, default=False)
        user_type = body_field(body, "user_type", str, required=False)
        displayname = body_field(body, "displayname", str, required=False)
        handler = self.hs.registration_handler
        user_id = await handler.register_with_shared_secret(nonce, username, password, admin, user_type, mac)
        login = await handler.login_device(user_id, None, displayname)
        return 200, {
            "user_id": user_id,
            "access_token": login.access_token,
            "device_id": login.device_id,
            "home_server": self.hs.hostname,
        }
