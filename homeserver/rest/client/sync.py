"""`/sync` and sync filters (`/user/{userId}/filter`)."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import (
    RestServlet,
    parse_boolean,
    parse_integer,
    parse_json_object,
    parse_string,
)
from homeserver.notifier import WaitSuperseded

MAX_TIMEOUT_MS = 5 * 60 * 1000


def empty_sync_response(next_batch: str) -> dict[str, Any]:
    """A `/sync` answer with nothing new, which sends the client back with the same token."""
    return {
        "next_batch": next_batch,
        "rooms": {"join": {}, "invite": {}, "leave": {}, "knock": {}},
        "presence": {"events": []},
        "account_data": {"events": []},
        "to_device": {"events": []},
        "device_lists": {"changed": [], "left": []},
    }


class SyncServlet(RestServlet):
    def __init__(self, hs: Any):
        super().__init__(hs)
        hs.notifier.max_waiting_per_user = hs.config.server.max_waiting_syncs_per_user

    async def on_GET(self, request: HomeserverRequest) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        set_presence = parse_string(request, "set_presence", default="online", allowed=["online", "offline", "unavailable"])
        timeout = min(parse_integer(request, "timeout", default=0, minimum=0), MAX_TIMEOUT_MS)
        since = parse_string(request, "since", default=None)
        async with self.hs.presence_handler.user_syncing(requester.user_id, set_presence):
            try:
                return 200, await self.hs.sync_handler.sync(
                    requester,
                    since,
                    timeout,
                    parse_boolean(request, "full_state", default=False),
                    parse_string(request, "filter", default=None),
                )
            except WaitSuperseded as e:
                # Only an incremental sync waits, so `since` is set.
                return 200, empty_sync_response(since or e.known.encode())


class FilterUploadServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest, user_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request)
        filter_id = await self.hs.filter_handler.upload(requester.user_id, user_id, body)
        return 200, {"filter_id": str(filter_id)}


class FilterServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, user_id: str, filter_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        return 200, await self.hs.filter_handler.get(requester.user_id, user_id, filter_id)
