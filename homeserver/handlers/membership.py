"""Membership changes: join (by id or alias), invite, leave, kick, ban, unban, knock, forget."""

from typing import TYPE_CHECKING, Any

from homeserver.http.auth import Requester
from homeserver.http.errors import MatrixError, forbidden, not_found
from homeserver.util.stringutils import is_valid_user_id

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# action -> membership written
ACTIONS = {"join": "join", "invite": "invite", "leave": "leave", "kick": "leave", "ban": "ban", "unban": "leave", "knock": "knock"}


class RoomMemberHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def resolve_room_id(self, room_id_or_alias: str) -> str:
        if room_id_or_alias.startswith("!"):
            return room_id_or_alias
        if room_id_or_alias.startswith("#"):
            found = await self.hs.stores.rooms.get_alias(room_id_or_alias)
            if found is None:
                raise not_found("Room alias not found")
            return found[0]
        raise MatrixError(400, f"{room_id_or_alias!r} is not a room id or alias", "M_INVALID_PARAM")

    async def update_membership(
        self, requester: Requester, target: str, room_id: str, action: str, reason: str | None = None,
        txn_id: str | None = None, extra_content: dict[str, Any] | None = None,
    ) -> str:
        """Send the member event for `action`; returns its event id."""
        if not is_valid_user_id(target):
            raise MatrixError(400, f"{target!r} is not a valid user id", "M_INVALID_PARAM")
        if await self.hs.stores.rooms.get_room_version(room_id) is None:
            raise not_found("Room not found")
        if action in ("join", "leave", "knock") and target != requester.user_id:
            raise forbidden("You can only change your own membership this way")
        if action == "unban":
            current = await self.hs.stores.members.get_membership(room_id, target)
            if current is None or current[0] != "ban":
                raise forbidden(f"{target} is not banned")
        content: dict[str, Any] = {"membership": ACTIONS[action], **(extra_content or {})}
        if reason is not None:
            content["reason"] = reason
        if action == "join" and target == requester.user_id:
            content.update(await self.hs.room_creation_handler._profile(target))
        event = await self.hs.event_creation_handler.create_and_send(
            {"type": "m.room.member", "room_id": room_id, "sender": requester.user_id, "state_key": target, "content": content},
            txn=(requester.user_id, requester.device_id or requester.access_token, txn_id) if txn_id else None,
        )
        return event.event_id

    async def forget(self, requester: Requester, room_id: str) -> None:
        current = await self.hs.stores.members.get_membership(room_id, requester.user_id)
        if current is not None and current[0] in ("join", "invite", "knock"):
            raise MatrixError(400, "You must leave the room before forgetting it", "M_UNKNOWN")
        if current is None:
            raise not_found("You have never been in this room")
        await self.hs.stores.members.forget(requester.user_id, room_id)
