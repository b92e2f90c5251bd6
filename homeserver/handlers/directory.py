"""Room aliases, the room directory visibility of rooms, and the public room list."""

from typing import TYPE_CHECKING, Any

from homeserver.http.auth import Requester
from homeserver.http.errors import MatrixError, forbidden, not_found

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAX_PUBLIC_ROOMS_LIMIT = 500


class DirectoryHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.rooms = hs.stores.rooms

    def check_local_alias(self, alias: str) -> None:
        localpart, sep, domain = alias[1:].partition(":") if alias.startswith("#") else ("", "", "")
        if not sep or not localpart or not domain:
            raise MatrixError(400, f"{alias!r} is not a valid room alias", "M_INVALID_PARAM")
        if domain != self.hs.hostname:
            raise MatrixError(400, "Room alias must be local to this server", "M_INVALID_PARAM")
        if any(c in localpart for c in " \t\n#:") or len(alias.encode()) > 255:
            raise MatrixError(400, "Room alias contains invalid characters or is too long", "M_INVALID_PARAM")

    async def create_alias(self, requester: Requester, alias: str, room_id: str) -> None:
        self.check_local_alias(alias)
        if await self.rooms.get_room_version(room_id) is None:
            raise not_found("Room not found")
        membership = await self.hs.stores.members.get_membership(room_id, requester.user_id)
        if not requester.is_admin and (membership is None or membership[0] != "join"):
            raise forbidden("You must be in the room to give it an alias")
        if not await self.rooms.create_alias(alias, room_id, requester.user_id):
            raise MatrixError(409, "Room alias already exists", "M_UNKNOWN")

    async def get_alias(self, alias: str) -> dict[str, Any]:
        if not alias.startswith("#") or not all(alias[1:].partition(":")[::2]):  # "#localpart:domain"
            raise MatrixError(400, f"{alias!r} is not a valid room alias", "M_INVALID_PARAM")
        found = await self.rooms.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        return {"room_id": found[0], "servers": [self.hs.hostname]}

    async def delete_alias(self, requester: Requester, alias: str) -> None:
        self.check_local_alias(alias)
        found = await self.rooms.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        room_id, creator = found
        if creator != requester.user_id and not requester.is_admin \
                and not await self._can_send_state(requester.user_id, room_id, "m.room.canonical_alias"):
            raise forbidden("You don't have permission to delete the alias")
        await self.rooms.delete_alias(alias)
        await self._remove_from_canonical_alias(requester, room_id, alias)

    async def _remove_from_canonical_alias(self, requester: Requester, room_id: str, alias: str) -> None:
        event_id = await self.hs.stores.state.get_current_state_event_id(room_id, "m.room.canonical_alias", "")
        event = await self.hs.stores.events.get_event(event_id) if event_id else None
        if event is None:
            return
        content = dict(event.content)
        alt = [a for a in content.get("alt_aliases", []) if a != alias] if isinstance(content.get("alt_aliases"), list) else None
        if content.get("alias") != alias and alt == content.get("alt_aliases"):
            return
        if content.get("alias") == alias:
            del content["alias"]
        if alt is not None:
            content["alt_aliases"] = alt
        try:
            await self.hs.event_creation_handler.create_and_send({
                "type": "m.room.canonical_alias", "room_id": room_id, "sender": requester.user_id,
                "state_key": "", "content": content,
            })
        except MatrixError:
            pass  # The deleter may lack the power to update the room; the alias is gone anyway.

    async def _can_send_state(self, user_id: str, room_id: str, event_type: str) -> bool:
        from homeserver.events.auth import get_send_level, get_user_power_level

        state = await self.hs.stores.state.get_current_state_ids(room_id)
        keys = [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", user_id)]
        events = await self.hs.stores.events.get_events(state[k] for k in keys if k in state)
        by_key = {(e.type, e.state_key or ""): e for e in events.values()}
        member = by_key.get(("m.room.member", user_id))
        if member is None or member.membership != "join":
            return False
        power_levels = by_key.get(("m.room.power_levels", ""))
        needed = get_send_level(event_type, "", power_levels.content if power_levels else None)
        return get_user_power_level(user_id, by_key) >= needed

    async def check_canonical_alias(self, room_id: str, content: dict[str, Any]) -> None:
        """Every alias named by an m.room.canonical_alias event must exist and point here."""
        aliases = []
        if "alias" in content:
            aliases.append(content["alias"])
        alt = content.get("alt_aliases", [])
        if not isinstance(alt, list):
            raise MatrixError(400, "alt_aliases must be a list", "M_INVALID_PARAM")
        aliases.extend(alt)
        for alias in aliases:
            if not isinstance(alias, str):
                raise MatrixError(400, "aliases must be strings", "M_INVALID_PARAM")
            found = await self.rooms.get_alias(alias)
            if found is None or found[0] != room_id:
                raise MatrixError(400, f"Room alias {alias} does not point to the room", "M_BAD_ALIAS")

    async def get_room_aliases(self, user_id: str, room_id: str) -> list[str]:
        if await self.rooms.get_room_version(room_id) is None:
            raise forbidden("You are not allowed to view this room")
        if not await self.hs.visibility_handler.can_see_room_state(user_id, room_id):
            raise forbidden("You are not in the room")
        return await self.rooms.get_aliases_for_room(room_id)

    # --- the room directory --------------------------------------------------------------------

    async def get_visibility(self, room_id: str) -> str:
        room = await self.rooms.get_room(room_id)
        if room is None:
            raise not_found("Room not found")
        return "public" if room.is_public else "private"

    async def set_visibility(self, requester: Requester, room_id: str, visibility: str) -> None:
        if await self.rooms.get_room_version(room_id) is None:
            raise not_found("Room not found")
        if not requester.is_admin and not await self._can_send_state(requester.user_id, room_id, "m.room.canonical_alias"):
            raise forbidden("You don't have permission to change the room's directory visibility")
        await self.rooms.set_room_is_public(room_id, visibility == "public")

    async def public_rooms(
        self, limit: int | None, since: str | None, search: str | None, room_types: list[str | None] | None = None,
    ) -> dict[str, Any]:
        room_ids = await self.rooms.get_public_room_ids()
        summaries = await self.hs.room_summary_handler.summaries(room_ids)
        chunk = sorted(summaries.values(), key=lambda s: (-s["num_joined_members"], s["room_id"]))
        for entry in chunk:
            entry.pop("encryption", None)
            entry.pop("room_version", None)
            entry.pop("allowed_room_ids", None)
        if room_types is not None:
            chunk = [s for s in chunk if s.get("room_type") in room_types]
        if search:
            needle = search.lower()
            chunk = [
                s for s in chunk
                if any(needle in str(s.get(k, "")).lower() for k in ("name", "topic", "canonical_alias", "room_id"))
            ]
        offset = _parse_since(since)
        limit = min(limit if limit is not None and limit > 0 else MAX_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT)
        page = chunk[offset:offset + limit]
        response: dict[str, Any] = {"chunk": page, "total_room_count_estimate": len(chunk)}
        if offset + limit < len(chunk):
            response["next_batch"] = f"o{offset + limit}"
        if offset > 0:
            response["prev_batch"] = f"o{max(0, offset - limit)}"
        return response


def _parse_since(since: str | None) -> int:
    if since is None:
        return 0
    digits = since[1:]
    if since.startswith("o") and digits.isascii() and digits.isdigit() and int(digits) < 2**63:
        return int(digits)
    raise MatrixError(400, "Invalid since token", "M_INVALID_PARAM")
