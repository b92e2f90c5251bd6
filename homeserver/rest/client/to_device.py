"""`PUT /sendToDevice/{eventType}/{txnId}`."""

from typing import Any

from homeserver.http.server import HomeserverRequest
from homeserver.http.servlet import RestServlet, body_field, parse_json_object


class SendToDeviceServlet(RestServlet):
    async def on_PUT(self, request: HomeserverRequest, event_type: str, txn_id: str) -> tuple[int, Any]:
        requester = await self.hs.auth.get_user_by_req(request, allow_guest=True)
        body = parse_json_object(request)
        messages = body_field(body, "messages", dict)
        await self.hs.to_device_handler.send(requester, event_type, txn_id, messages)
        return 200, {}
