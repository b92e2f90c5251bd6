"""Spaces and room previews: `/rooms/{roomId}/hierarchy` (a depth-first walk over
`m.space.child` state) and the room summary endpoint."""

from typing import TYPE_CHECKING, Any

from homeserver.http.errors import MatrixError, forbidden, not_found

if TYPE_CHECKING:
    from homeserver.server import HomeServer

MAX_LIMIT = 50
MAX_DEPTH = 50
PEEKABLE_JOIN_RULES = ("public", "knock", "knock_restricted")


class HierarchyHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def _is_accessible(self, user_id: str | None, room_id: str, summary: dict[str, Any]) -> bool:
        if summary["world_readable"] or summary["join_rule"] in PEEKABLE_JOIN_RULES:
            return True
        if user_id is None:
            return False
        membership = await self.hs.stores.members.get_membership(room_id, user_id)
        if membership is not None and membership[0] in ("join", "invite"):
            return True
        # A restricted room is open to members of the rooms its join rules allow.
        allowed = summary.get("allowed_room_ids") or []
        return bool(allowed) and any(r in allowed for r in await self.hs.stores.members.get_rooms_for_user(user_id))

    async def _children_state(self, room_id: str) -> list[dict[str, Any]]:
        """The room's m.space.child events (with a `via`), stripped, in the spaces ordering."""
        state_ids = await self.hs.stores.state.get_current_state_ids(room_id)
        ids = [e for (t, _), e in sorted(state_ids.items()) if t == "m.space.child"]
        events = await self.hs.stores.events.get_events(ids)
        children = []
        for event_id in ids:
            event = events.get(event_id)
            if event is None or not isinstance(event.content.get("via"), list) or not event.content["via"]:
                continue
            children.append({
                "type": event.type, "state_key": event.state_key, "content": event.content,
                "sender": event.sender, "origin_server_ts": event.origin_server_ts,
            })
        children.sort(key=_child_order)
        return children

    async def get_hierarchy(
        self, user_id: str, room_id: str, limit: int | None, max_depth: int | None, from_token: str | None,
        suggested_only: bool,
    ) -> dict[str, Any]:
        limit = min(limit or MAX_LIMIT, MAX_LIMIT)
        max_depth = MAX_DEPTH if max_depth is None else min(max_depth, MAX_DEPTH)
        skip = _parse_offset(from_token)
        summaries = self.hs.room_summary_handler
        root = (await summaries.summaries([room_id])).get(room_id)
        if root is None or not await self._is_accessible(user_id, room_id, root):
            raise forbidden("You cannot view this room's hierarchy")
        rooms: list[dict[str, Any]] = []
        seen: set[str] = set()
        # Depth-first, as the spec asks: a stack, each room's children pushed last-first.
        queue: list[tuple[str, int]] = [(room_id, 0)]
        index = 0
        while queue and len(rooms) < limit:
            current, depth = queue.pop()
            if current in seen:
                continue
            seen.add(current)
            summary = (await summaries.summaries([current])).get(current)
            if summary is None or not await self._is_accessible(user_id, current, summary):
                continue
            # Only a space has children; m.space.child events in other rooms mean nothing.
            children = await self._children_state(current) if summary.get("room_type") == "m.space" else []
            if index >= skip:
                summary.pop("encryption", None)
                rooms.append({**summary, "children_state": children})
            index += 1
            if depth >= max_depth:
                continue
            for child in reversed(children):
                child_id = child["state_key"]
                if child_id in seen or (suggested_only and not child["content"].get("suggested")):
                    continue
                queue.append((child_id, depth + 1))
        response: dict[str, Any] = {"rooms": rooms}
        if queue:
            response["next_batch"] = f"o{index}"
        return response

    async def get_summary(self, user_id: str | None, room_id_or_alias: str) -> dict[str, Any]:
        room_id = await self.hs.membership_handler.resolve_room_id(room_id_or_alias)
        summary = (await self.hs.room_summary_handler.summaries([room_id])).get(room_id)
        if summary is None:
            raise not_found("Room not found")
        if not await self._is_accessible(user_id, room_id, summary):
            raise not_found("Room not found")
        if user_id is not None:
            membership = await self.hs.stores.members.get_membership(room_id, user_id)
            summary["membership"] = membership[0] if membership else "leave"
        return summary


def _child_order(child: dict[str, Any]) -> tuple[bool, str, int, str]:
    """Spaces' ordering of children: by a valid `order`, those without last, then by the
    m.space.child event's timestamp, then by room id."""
    order = child["content"].get("order")
    if not isinstance(order, str) or not 0 < len(order) <= 50 or any(not 0x20 <= ord(c) <= 0x7E for c in order):
        order = None
    return order is None, order or "", child["origin_server_ts"], child["state_key"]


def _parse_offset(token: str | None) -> int:
    if token is None:
        return 0
    digits = token[1:]
    if token.startswith("o") and digits.isascii() and digits.isdigit() and int(digits) < 2**63:
        return int(digits)
    raise MatrixError(400, "Invalid from token", "M_INVALID_PARAM")
