"""`/account/whoami`, `/account/password` and `/account/deactivate`."""

from typing import Any

from homeserver.handlers.auth import LOGIN_TYPE_PASSWORD
from homeserver.http.errors import MatrixError
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object


class WhoamiServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body: dict[str, Any] = {"user_id": requester.user_id, "is_guest": requester.is_guest}
        if requester.device_id is not None:
            body["device_id"] = requester.device_id
        return 200, body


class PasswordServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        if not self.hs.config.registration.password_login_enabled:
            raise MatrixError(403, "Password changes are disabled", "M_FORBIDDEN")
        new_password = body_field(body, "new_password", str, required=False)
        body_field(body, "logout_devices", bool, required=False)
        auth = self.hs.auth_handler
        server_data = {}
        if new_password is not None:
            # The session keeps only the hash, never the password itself.
            auth.check_password_policy(new_password)
            server_data["new_password_hash"] = await auth.hash_password(new_password)
        result = await auth.check_ui_auth(
            [[LOGIN_TYPE_PASSWORD]], body, request.path.decode(), "POST", "change your password",
            requester_user_id=requester.user_id, server_data=server_data,
        )
        password_hash = result.server_data.get("new_password_hash")
        if password_hash is None:
            raise MatrixError(400, "Missing parameter: new_password", "M_MISSING_PARAM")
        await self.hs.account_handler.change_password(
            requester.user_id, password_hash, bool(result.params.get("logout_devices", True)), requester
        )
        return 200, {}


class DeactivateServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        body_field(body, "erase", bool, required=False)
        await self.hs.auth_handler.check_ui_auth(
            [[LOGIN_TYPE_PASSWORD]], body, request.path.decode(), "POST", "deactivate your account",
            requester_user_id=requester.user_id,
        )
        await self.hs.account_handler.deactivate(requester.user_id)
        return 200, {"id_server_unbind_result": "no-support"}
