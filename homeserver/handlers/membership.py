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
            authoriser = await self._restricted_join_authoriser(room_id, target)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        event = await self.hs.event_creation_handler.create_and_send(
            {"type": "m.room.member", "room_id": room_id, "sender": requester.user_id, "state_key": target, "content": content},
            txn=(requester.user_id, requester.device_id or requester.access_token, txn_id) if txn_id else None,
        )
        return event.event_id

    async def _restricted_join_authoriser(self, room_id: str, user_id: str) -> str | None:
        """For a restricted room the user may join through membership of an allowed room: a
        joined local user able to invite, who vouches for the join. None when not needed."""
        from homeserver.events.auth import get_user_power_level

        stores = self.hs.stores
        state = await stores.state.get_current_state_ids(room_id)
        join_rules_id = state.get(("m.room.join_rules", ""))
        join_rules = await stores.events.get_event(join_rules_id) if join_rules_id else None
        if join_rules is None or join_rules.content.get("join_rule") not in ("restricted", "knock_restricted"):
            return None
        current = await stores.members.get_membership(room_id, user_id)
        if current is not None and current[0] in ("join", "invite"):
            return None
        allow = join_rules.content.get("allow")
        allowed_rooms = [a.get("room_id") for a in allow if isinstance(a, dict) and a.get("type") == "m.room_membership"] \
            if isinstance(allow, list) else []
        user_rooms = set(await stores.members.get_rooms_for_user(user_id))
        if not any(r in user_rooms for r in allowed_rooms):
            if join_rules.content.get("join_rule") == "restricted":
                raise forbidden("You are not a member of any room that grants access to this one")
            return None
        keys = [k for k in state if k[0] == "m.room.member" or k in (("m.room.create", ""), ("m.room.power_levels", ""))]
        events = await stores.events.get_events(state[k] for k in keys)
        by_key = {(e.type, e.state_key or ""): e for e in events.values()}
        power_levels = by_key.get(("m.room.power_levels", ""))
        invite_level = int(power_levels.content.get("invite", 0)) if power_levels else 0
        candidates = sorted(
            (get_user_power_level(e.state_key, by_key), e.state_key) for e in events.values()
            if e.type == "m.room.member" and e.membership == "join" and e.state_key
            and e.state_key.endswith(":" + self.hs.hostname)
        )
        for level, candidate in reversed(candidates):
            if level >= invite_level:
                return candidate
        raise forbidden("No user in the room can authorise your join")

    async def forget(self, requester: Requester, room_id: str) -> None:
        current = await self.hs.stores.members.get_membership(room_id, requester.user_id)
        if current is not None and current[0] in ("join", "invite", "knock"):
            raise MatrixError(400, "You must leave the room before forgetting it", "M_UNKNOWN")
        if current is None:
            raise not_found("You have never been in this room")
        await self.hs.stores.members.forget(requester.user_id, room_id)
