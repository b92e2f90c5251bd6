"""`POST /rooms/{roomId}/receipt/{receiptType}/{eventId}` and `POST /rooms/{roomId}/read_markers`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, parse_json_object


class ReceiptServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest, room_id: str, receipt_type: str, event_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request, allow_empty=True)
        await self.hs.receipts_handler.post_receipt(requester.user_id, room_id, receipt_type, event_id, body)
        return 200, {}


class ReadMarkersServlet(RestServlet):
    async def on_POST(self, request: HomeserverRequest, room_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request)
        body = parse_json_object(request)
        await self.hs.receipts_handler.set_read_markers(requester.user_id, room_id, body)
        return 200, {}
