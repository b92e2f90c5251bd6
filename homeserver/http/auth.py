"""Access-token authentication of client requests."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeserver.http.errors import MatrixError, forbidden
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import query_arg
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Devices' last-seen time is written at most this often per device.
LAST_SEEN_INTERVAL_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class Requester:
    user_id: str
    device_id: str | None
    access_token: str
    is_admin: bool
    is_guest: bool


def get_access_token(request: HomeserverRequest) -> str | None:
    header = request.getHeader("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MatrixError(401, "Invalid Authorization header", "M_MISSING_TOKEN")
        return token.strip()
    return query_arg(request, "access_token")


class Auth:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self._last_seen: dict[tuple[str, str], int] = {}

    async def get_user_by_req(self, request: HomeserverRequest, allow_guest: bool = False) -> Requester:
        token = get_access_token(request)
        if token is None:
            raise MatrixError(401, "Missing access token", "M_MISSING_TOKEN")
        info = await self.hs.stores.registration.get_token_info(token)
        if info is None or info.deactivated:
            raise MatrixError(401, "Unknown access token", "M_UNKNOWN_TOKEN", soft_logout=False)
        if info.valid_until_ms is not None and info.valid_until_ms < now_ms():
            raise MatrixError(401, "Access token has expired", "M_UNKNOWN_TOKEN", soft_logout=True)
        if info.is_guest and not allow_guest:
            raise MatrixError(403, "Guest access not allowed", "M_GUEST_ACCESS_FORBIDDEN")
        request.requester_name = info.user_id
        if info.device_id is not None:
            await self._record_last_seen(request, info.user_id, info.device_id)
        return Requester(info.user_id, info.device_id, token, info.admin, info.is_guest)

    async def get_admin_by_req(self, request: HomeserverRequest) -> Requester:
        requester = await self.get_user_by_req(request)
        if not requester.is_admin:
            raise forbidden("You are not a server admin")
        return requester

    async def _record_last_seen(self, request: HomeserverRequest, user_id: str, device_id: str) -> None:
        now = now_ms()
        key = (user_id, device_id)
        if now - self._last_seen.get(key, 0) < LAST_SEEN_INTERVAL_MS:
            return
        self._last_seen[key] = now
        user_agent = (request.getHeader("user-agent") or "")[:512]
        await self.hs.stores.devices.update_last_seen(user_id, device_id, now, request.client_ip(), user_agent)
