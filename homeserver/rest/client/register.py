"""`/register` (user-interactive auth with m.login.dummy) and `/register/available`."""

from typing import Any

from homeserver.handlers.auth import LOGIN_TYPE_DUMMY
from homeserver.http.errors import MatrixError
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object, parse_string


class RegisterServlet(RestServlet):
    def __init__(self, hs: Any):
        super().__init__(hs)
        self.ratelimiter = hs.ratelimiter("rc_registration")

    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        kind = parse_string(request, "kind", default="user", allowed=["user", "guest"])
        body = parse_json_object(request, allow_empty=True)
        config = self.hs.config.registration
        self.ratelimiter.check(request.client_ip(), update=False)
        if kind == "guest":
            raise MatrixError(403, "Guest access is disabled", "M_GUEST_ACCESS_FORBIDDEN")
        if not config.enable_registration:
            raise MatrixError(403, "Registration has been disabled", "M_FORBIDDEN")
        for name, kind in (("username", str), ("password", str), ("device_id", str),
                           ("initial_device_display_name", str), ("inhibit_login", bool)):
            body_field(body, name, kind, required=False)
        if isinstance(body.get("username"), str):
            # Like Synapse, map the username onto the lower-case user id grammar.
            body["username"] = body["username"].lower()
        handler = self.hs.registration_handler
        if "auth" not in body:
            # Say so before the client goes through auth stages.
            if body.get("username") is not None:
                await handler.check_username_available(body["username"])
            if body.get("password") is None:
                raise MatrixError(400, "Missing parameter: password", "M_MISSING_PARAM")
        server_data = {}
        if isinstance(body.get("password"), str):
            # The session keeps only the hash, never the password itself.
            self.hs.auth_handler.check_password_policy(body["password"])
            server_data["password_hash"] = await self.hs.auth_handler.hash_password(body["password"])
        result = await self.hs.auth_handler.check_ui_auth(
            [[LOGIN_TYPE_DUMMY]], body, request.path.decode(), "POST", "register a new account",
            server_data=server_data,
        )
        params = result.params
        password_hash = result.server_data.get("password_hash")
        if password_hash is None:
            raise MatrixError(400, "Missing parameter: password", "M_MISSING_PARAM")
        self.ratelimiter.check(request.client_ip())
        user_id = await handler.register_user(params.get("username"), None, password_hash=password_hash)
        response: dict[str, Any] = {"user_id": user_id, "home_server": self.hs.hostname}
        if not params.get("inhibit_login", False):
            login = await handler.login_device(
                user_id, params.get("device_id"), params.get("initial_device_display_name")
            )
            response.update(access_token=login.access_token, device_id=login.device_id)
        return 200, response


class RegisterAvailableServlet(RestServlet):
    def __init__(self, hs: Any):
        super().__init__(hs)
        self.ratelimiter = hs.ratelimiter("rc_registration")

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        if not self.hs.config.registration.enable_registration:
            raise MatrixError(403, "Registration has been disabled", "M_FORBIDDEN")
        self.ratelimiter.check(request.client_ip())
        username = parse_string(request, "username")
        await self.hs.registration_handler.check_username_available(username)
        return 200, {"available": True}
