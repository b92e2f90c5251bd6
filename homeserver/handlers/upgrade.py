"""Room upgrades (`/rooms/{roomId}/upgrade`): a tombstone in the old room, a new room whose
create event names its predecessor, the old room's state, bans and aliases carried over, and
the old room restricted."""

import copy
from typing import TYPE_CHECKING, Any

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.http.auth import Requester
from homeserver.http.errors import MatrixError, forbidden

if TYPE_CHECKING:
    from homeserver.server import HomeServer

STATE_TO_COPY = (
    "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.name", "m.room.topic",
    "m.room.avatar", "m.room.encryption", "m.room.server_acl", "m.space.child", "m.space.parent",
)


class RoomUpgradeHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def upgrade(self, requester: Requester, old_room_id: str, new_version_id: str) -> str:
        new_version = KNOWN_ROOM_VERSIONS.get(new_version_id)
        if new_version is None:
            raise MatrixError(400, f"Your homeserver does not support room version {new_version_id!r}", "M_UNSUPPORTED_ROOM_VERSION")
        stores = self.hs.stores
        if await stores.rooms.get_room_version(old_room_id) is None:
            raise MatrixError(404, "Room not found", "M_NOT_FOUND")
        if not await self.hs.directory_handler._can_send_state(requester.user_id, old_room_id, "m.room.tombstone"):
            raise forbidden("You don't have permission to upgrade this room")
        old_state_ids = await stores.state.get_current_state_ids(old_room_id)
        old_state = await stores.events.get_events(old_state_ids.values())
        by_key = {key: old_state[e] for key, e in old_state_ids.items() if e in old_state}
        old_room = await stores.rooms.get_room(old_room_id)
        new_room_id = await self.hs.room_creation_handler._allocate_room(
            requester.user_id, new_version.identifier, bool(old_room and old_room.is_public)
        )
        send = self.hs.event_creation_handler.create_and_send
        tombstone = await send({
            "type": "m.room.tombstone", "room_id": old_room_id, "sender": requester.user_id, "state_key": "",
            "content": {"body": "This room has been replaced", "replacement_room": new_room_id},
        })
        await self._create_new_room(requester, new_room_id, new_version.identifier, old_room_id, tombstone.event_id, by_key)
        await self._move_aliases(requester, old_room_id, new_room_id, by_key)
        if old_room and old_room.is_public:  # The new room takes the old one's place in the directory.
            await stores.rooms.set_room_is_public(old_room_id, False)
        await self._restrict_old_room(requester, old_room_id, by_key)
        return new_room_id

    async def _create_new_room(
        self, requester: Requester, room_id: str, version_id: str, old_room_id: str, tombstone_id: str,
        old: dict[tuple[str, str], Any],
    ) -> None:
        user_id = requester.user_id
        version = KNOWN_ROOM_VERSIONS[version_id]
        send = self.hs.event_creation_handler.create_and_send

        async def state(etype: str, content: dict[str, Any], state_key: str = "") -> None:
            await send({"type": etype, "room_id": room_id, "sender": user_id, "state_key": state_key, "content": content},
                       room_version=version)

        old_create = old[("m.room.create", "")].content
        create = {key: old_create[key] for key in ("type", "m.federate") if key in old_create}
        create.update(room_version=version_id, predecessor={"room_id": old_room_id, "event_id": tombstone_id})
        if not version.implicit_room_creator:
            create["creator"] = user_id
        await state("m.room.create", create)
        await state("m.room.member", {"membership": "join"}, user_id)
        power_levels = copy.deepcopy(old[("m.room.power_levels", "")].content) if ("m.room.power_levels", "") in old else {}
        # While copying state the upgrader needs the power to send all of it.
        needed = max([int(v) for v in _int_values(power_levels)] + [100])
        temporary = copy.deepcopy(power_levels)
        temporary.setdefault("users", {})[user_id] = needed
        await state("m.room.power_levels", temporary)
        for (etype, state_key), event in old.items():
            if etype in STATE_TO_COPY and event.content:
                await state(etype, dict(event.content), state_key)
        for (etype, state_key), event in old.items():
            if etype == "m.room.member" and event.membership == "ban":
                await state("m.room.member", {"membership": "ban"}, state_key)
        if temporary != power_levels:
            await state("m.room.power_levels", power_levels)

    async def _move_aliases(self, requester: Requester, old_room_id: str, new_room_id: str, old: dict[tuple[str, str], Any]) -> None:
        rooms = self.hs.stores.rooms
        aliases = await rooms.get_aliases_for_room(old_room_id)
        for alias in aliases:
            await rooms.delete_alias(alias)
            await rooms.create_alias(alias, new_room_id, requester.user_id)
        canonical = old.get(("m.room.canonical_alias", ""))
        if canonical is None or not canonical.content:
            return
        send = self.hs.event_creation_handler.create_and_send
        content = dict(canonical.content)
        for room_id, body in ((old_room_id, {}), (new_room_id, content)):
            try:
                await send({"type": "m.room.canonical_alias", "room_id": room_id, "sender": requester.user_id,
                            "state_key": "", "content": body})
            except MatrixError:
                pass  # Aliases that no longer point at the room cannot be carried over.

    async def _restrict_old_room(self, requester: Requester, room_id: str, old: dict[tuple[str, str], Any]) -> None:
        event = old.get(("m.room.power_levels", ""))
        content = copy.deepcopy(event.content) if event else {}
        restricted = max(50, int(content.get("users_default", 0)) + 1)
        changed = False
        for key in ("events_default", "invite"):
            if int(content.get(key, 0 if key == "events_default" else 50)) < restricted:
                content[key] = restricted
                changed = True
        if changed:
            try:
                await self.hs.event_creation_handler.create_and_send({
                    "type": "m.room.power_levels", "room_id": room_id, "sender": requester.user_id, "state_key": "",
                    "content": content,
                })
            except MatrixError:
                pass  # Without the power to change levels the old room stays as it is.


def _int_values(content: dict[str, Any]) -> list[int]:
    values: list[int] = []
    for value in content.values():
        if isinstance(value, dict):
            values.extend(_int_values(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            values.append(value)
    return values
