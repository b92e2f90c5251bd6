"""Reports of events and rooms by users, stored for the server's admins."""

import json
from typing import TYPE_CHECKING, Any

from homeserver.http.errors import MatrixError, not_found

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAX_REASON_LENGTH = 1000


class ReportHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def report_event(self, user_id: str, room_id: str, event_id: str, body: dict[str, Any]) -> None:
        event = await self.hs.stores.events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Unable to report event: it does not exist or you aren't able to see it.")
        if not await self.hs.visibility_handler.filter_events_for_user(user_id, [event]):
            raise not_found("Unable to report event: it does not exist or you aren't able to see it.")
        await self._store(user_id, room_id, event_id, body)

    async def report_room(self, user_id: str, room_id: str, body: dict[str, Any]) -> None:
        if not isinstance(body.get("reason"), str):
            raise MatrixError(400, "reason is required and must be a string", "M_BAD_JSON")
        if await self.hs.stores.rooms.get_room_version(room_id) is None:
            raise not_found("Room not found")
        await self._store(user_id, room_id, "", body)

    async def _store(self, user_id: str, room_id: str, event_id: str, body: dict[str, Any]) -> None:
        reason = body.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH):
            raise MatrixError(400, f"reason must be a string of at most {MAX_REASON_LENGTH} characters", "M_BAD_JSON")
        score = body.get("score")
        if score is not None and (not isinstance(score, int) or isinstance(score, bool) or not -100 <= score <= 0):
            raise MatrixError(400, "score must be an integer between -100 and 0", "M_BAD_JSON")
        await self.hs.stores.rooms.add_report(room_id, event_id, user_id, reason, json.dumps(body))
