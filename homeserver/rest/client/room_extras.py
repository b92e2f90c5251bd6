"""Room upgrades, reports and `/timestamp_to_event`."""

from typing import Any

from homeserver.http.errors import not_found
from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import (
    RestServlet,
    body_field,
    parse_integer,
    parse_json_object,
    parse_string,
)


class UpgradeServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        new_version = body_field(body, "new_version", str)
        new_room_id = await self.hs.room_upgrade_handler.upgrade(requester, room_id, new_version)
        return 200, {"replacement_room": new_room_id}


class ReportEventServlet(RestServlet):
    def __init__(self, hs: Any):
        super().__init__(hs)
        self.ratelimiter = hs.ratelimiter("rc_reports")

    async def on_POST(self, request: HomeserverRequest, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        self.ratelimiter.check(requester.user_id)
        await self.hs.report_handler.report_event(requester.user_id, room_id, event_id, body)
        return 200, {}


class ReportRoomServlet(RestServlet):
    def __init__(self, hs: Any):
        super().__init__(hs)
        self.ratelimiter = hs.ratelimiter("rc_reports")

    async def on_POST(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        self.ratelimiter.check(requester.user_id)
        await self.hs.report_handler.report_room(requester.user_id, room_id, body)
        return 200, {}


class TimestampToEventServlet(RestServlet):
    async def on_GET(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        ts = parse_integer(request, "ts")
        forwards = parse_string(request, "dir", allowed=["f", "b"]) == "f"
        await self.hs.room_read_handler._check_can_read_history(requester.user_id, room_id)
        event_id = await self.hs.stores.events.get_event_closest_to_ts(room_id, ts, forwards)
        event = await self.hs.stores.events.get_event(event_id) if event_id else None
        if event is None or not await self.hs.visibility_handler.filter_events_for_user(requester.user_id, [event]):
            raise not_found(f"Unable to find event from {ts} in direction {'f' if forwards else 'b'}")
        return 200, {"event_id": event.event_id, "origin_server_ts": event.origin_server_ts}
