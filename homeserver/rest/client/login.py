"""`/login` (password login), `/logout` and `/logout/all`."""

from typing import Any

from homeserver.handlers.auth import LOGIN_TYPE_PASSWORD, login_user_from_body
from homeserver.http.errors import MatrixError
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object


class LoginServlet(RestServlet):
    def __init__(self, hs: Any):
        super().__init__(hs)
        self.address_limiter = hs.ratelimiter("rc_login.address")
        self.account_limiter = hs.ratelimiter("rc_login.account")
        self.failed_limiter = hs.ratelimiter("rc_login.failed_attempts")

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        flows = []
        if self.hs.config.registration.password_login_enabled:
            flows.append({"type": LOGIN_TYPE_PASSWORD})
        return 200, {"flows": flows}

    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        body = parse_json_object(request)
        login_type = body_field(body, "type", str)
        if login_type != LOGIN_TYPE_PASSWORD or not self.hs.config.registration.password_login_enabled:
            raise MatrixError(400, f"Unknown login type {login_type}", "M_UNKNOWN")
        self.address_limiter.check(request.client_ip())
        user = login_user_from_body(body)
        password = body_field(body, "password", str)
        device_id = body_field(body, "device_id", str, required=False)
        display_name = body_field(body, "initial_device_display_name", str, required=False)
        auth = self.hs.auth_handler
        attempted_user_id = auth.resolve_user_id(user)
        self.failed_limiter.check(attempted_user_id.lower(), update=False)
        user_id = await auth.check_user_password(user, password)
        if user_id is None:
            self.failed_limiter.record(attempted_user_id.lower())
            raise MatrixError(403, "Invalid username or password", "M_FORBIDDEN")
        self.account_limiter.check(user_id)
        login = await self.hs.registration_handler.login_device(user_id, device_id, display_name)
        return 200, {
            "user_id": login.user_id,
            "access_token": login.access_token,
            "device_id": login.device_id,
            "home_server": self.hs.hostname,
        }


class LogoutServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        await self.hs.account_handler.logout(requester)
        return 200, {}


class LogoutAllServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        await self.hs.account_handler.logout_all(requester.user_id)
        return 200, {}
