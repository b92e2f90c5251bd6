"""`/versions` and `/capabilities`: what this server supports."""

from typing import Any

from homeserver.http.servlet import RestServlet
from homeserver.server_versions import KNOWN_ROOM_VERSIONS, SPEC_VERSIONS


class VersionsServlet(RestServlet):
    async def on_GET(self, request: Any) -> tuple[int, Any]:
        return 200, {"versions": SPEC_VERSIONS, "unstable_features": {}}


class CapabilitiesServlet(RestServlet):
    async def on_GET(self, request: Any) -> tuple[int, Any]:
        await self.hs.auth.get_user_by_req(request, allow_guest=True)
        password_enabled = self.hs.config.registration.password_login_enabled
        return 200, {
            "capabilities": {
                "m.room_versions": {
                    "default": self.hs.config.server.default_room_version,
                    "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS},
                },
                "m.change_password": {"enabled": password_enabled},
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                "m.3pid_changes": {"enabled": False},
                "m.get_login_token": {"enabled": False},
            }
        }
