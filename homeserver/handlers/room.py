"""Creating rooms (`/createRoom`): presets, initial state, power levels, aliases, invites."""

import copy
from typing import TYPE_CHECKING, Any

from homeserver.events.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS
from homeserver.http.auth import Requester
from homeserver.http.errors import MatrixError, bad_json
from homeserver.storage.stores.rooms import RoomExistsError
from homeserver.util.stringutils import random_string

if TYPE_CHECKING:
    from homeserver.server import HomeServer

PRESETS: dict[str, dict[str, Any]] = {
    "private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_can_join": True, "invitees_are_admins": False},
    "trusted_private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_can_join": True, "invitees_are_admins": True},
    "public_chat": {"join_rule": "public", "history_visibility": "shared", "guest_can_join": False, "invitees_are_admins": False},
}

# Events sent by createRoom itself, which initial_state may not override.
RESERVED_INITIAL_STATE = {"m.room.create", "m.room.member", "m.room.power_levels"}


def default_power_levels(creator: str, invitees: list[str], invitees_are_admins: bool) -> dict[str, Any]:
    users = {creator: 100}
    if invitees_are_admins:
        users.update({user: 100 for user in invitees})
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
            "m.room.server_acl": 100, "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50,
        "historical": 100,
        "notifications": {"room": 50},
    }


class RoomCreationHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def create_room(self, requester: Requester, body: dict[str, Any]) -> tuple[str, str | None]:
        """Returns (room_id, room_alias)."""
        config = self._parse(body)
        user_id = requester.user_id
        version = KNOWN_ROOM_VERSIONS[config["room_version"]]
        alias = None
        if config["alias_localpart"] is not None:
            alias = f"#{config['alias_localpart']}:{self.hs.hostname}"
            if await self.hs.stores.rooms.get_alias(alias):
                raise MatrixError(400, "Room alias already taken", "M_ROOM_IN_USE")
        room_id = await self._allocate_room(user_id, version.identifier, config["visibility"] == "public")
        if alias and not await self.hs.stores.rooms.create_alias(alias, room_id, user_id):
            raise MatrixError(400, "Room alias already taken", "M_ROOM_IN_USE")
        send = self.hs.event_creation_handler.create_and_send

        async def state(etype: str, content: dict[str, Any], state_key: str = "") -> None:
            await send({"type": etype, "room_id": room_id, "sender": user_id, "state_key": state_key, "content": content}, room_version=version)

        creation_content = {**config["creation_content"], "room_version": version.identifier}
        if not version.implicit_room_creator:
            creation_content["creator"] = user_id
        await state("m.room.create", creation_content)
        await state("m.room.member", {"membership": "join", **await self._profile(user_id)}, user_id)
        preset = PRESETS[config["preset"]]
        power_levels = default_power_levels(user_id, config["invite"], preset["invitees_are_admins"])
        initial = {(e["type"], e.get("state_key", "")): e["content"] for e in config["initial_state"]}
        if ("m.room.power_levels", "") in initial:
            power_levels = initial.pop(("m.room.power_levels", ""))
        power_levels.update(config["power_level_content_override"])
        await state("m.room.power_levels", power_levels)
        if alias:
            await state("m.room.canonical_alias", {"alias": alias})
        defaults = {
            ("m.room.join_rules", ""): {"join_rule": preset["join_rule"]},
            ("m.room.history_visibility", ""): {"history_visibility": preset["history_visibility"]},
        }
        if preset["guest_can_join"]:
            defaults[("m.room.guest_access", "")] = {"guest_access": "can_join"}
        for key, content in defaults.items():
            if key not in initial:
                await state(key[0], content, key[1])
        for (etype, state_key), content in initial.items():
            await state(etype, content, state_key)
        if config["name"] is not None:
            await state("m.room.name", {"name": config["name"]})
        if config["topic"] is not None:
            await state("m.room.topic", {"topic": config["topic"]})
        for invitee in config["invite"]:
            await self.hs.membership_handler.update_membership(
                requester, invitee, room_id, "invite", extra_content={"is_direct": True} if config["is_direct"] else None
            )
        return room_id, alias

    async def _allocate_room(self, creator: str, version: str, is_public: bool) -> str:
        for _ in range(5):
            room_id = f"!{random_string(18)}:{self.hs.hostname}"
            try:
                await self.hs.stores.rooms.store_room(room_id, version, creator, is_public)
                return room_id
            except RoomExistsError:
                continue
        raise MatrixError(500, "Could not allocate a room id")

    async def _profile(self, user_id: str) -> dict[str, Any]:
        """displayname/avatar_url for member events (only those that are set)."""
        return await self.hs.profile_handler.member_event_profile(user_id)

    def _parse(self, body: dict[str, Any]) -> dict[str, Any]:
        visibility = body.get("visibility", "private")
        if visibility not in ("public", "private"):
            raise bad_json("visibility must be 'public' or 'private'")
        preset = body.get("preset") or ("public_chat" if visibility == "public" else "private_chat")
        if preset not in PRESETS:
            raise bad_json(f"Unknown preset {preset!r}")
        room_version = body.get("room_version", self.hs.config.server.default_room_version or DEFAULT_ROOM_VERSION)
        if not isinstance(room_version, str) or room_version not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, f"Your homeserver does not support room version {room_version!r}", "M_UNSUPPORTED_ROOM_VERSION")
        config = {
            "visibility": visibility, "preset": preset, "room_version": room_version,
            "alias_localpart": _optional(body, "room_alias_name", str),
            "name": _optional(body, "name", str), "topic": _optional(body, "topic", str),
            "invite": _optional(body, "invite", list) or [],
            "initial_state": _optional(body, "initial_state", list) or [],
            "power_level_content_override": copy.deepcopy(_optional(body, "power_level_content_override", dict) or {}),
            "creation_content": copy.deepcopy(_optional(body, "creation_content", dict) or {}),
            "is_direct": bool(_optional(body, "is_direct", bool)),
        }
        if any(not isinstance(u, str) or not u.startswith("@") or ":" not in u for u in config["invite"]):
            raise bad_json("invite must be a list of user ids")
        for item in config["initial_state"]:
            if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not isinstance(item.get("content"), dict) \
                    or not isinstance(item.get("state_key", ""), str):
                raise bad_json("initial_state entries need a string type, optional string state_key and object content")
            if item["type"] in RESERVED_INITIAL_STATE - {"m.room.power_levels"}:
                raise bad_json(f"initial_state may not contain {item['type']}")
        alias = config["alias_localpart"]
        if alias is not None and (not alias or any(c in alias for c in ":# \t\n")):
            raise MatrixError(400, "Invalid characters in room alias", "M_INVALID_PARAM")
        return config


def _optional(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
        raise bad_json(f"{key} has the wrong type")
    return value
