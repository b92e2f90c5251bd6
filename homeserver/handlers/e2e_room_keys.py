"""Server-side key backups (`/room_keys/...`): backup versions and the encrypted megolm
session keys in them. Only the newest version accepts keys; an upload keeps the stored copy of
a session unless the new one is better (verified, then a lower first message index, then
fewer forwards). The key data itself is opaque to the server."""

from typing import TYPE_CHECKING, Any

from homeserver.http.errors import MatrixError, bad_json, invalid_param, missing_param, not_found
from homeserver.storage.stores.room_keys import BackupVersion, RoomKey, RoomKeys
from homeserver.util.linearizer import Linearizer

if TYPE_CHECKING:
    from homeserver.server import HomeServer

JsonDict = dict[str, Any]
MAX_VERSION = 2**63 - 1


def _version_number(version: str) -> int | None:
    """Versions are decimal integers; anything else names no backup. (`str.isdigit` alone
    also accepts digits int() rejects, such as superscripts.)"""
    if not (version.isascii() and version.isdigit()) or int(version) > MAX_VERSION:
        return None
    return int(version)


def _rank(key: RoomKey) -> tuple[bool, int, int]:
    """Higher is better: verified first, then lower first message index, then fewer forwards."""
    return key.is_verified, -key.first_message_index, -key.forwarded_count


class E2eRoomKeysHandler:
    def __init__(self, hs: "HomeServer"):
        self.store = hs.stores.room_keys
        # Uploads and deletions of one user's backup run one at a time, so that deciding
        # which copy of a session key to keep and writing it cannot interleave.
        self._lock = Linearizer()

    # --- versions ------------------------------------------------------------------------------

    async def create_version(self, user_id: str, body: JsonDict) -> JsonDict:
        algorithm, auth_data = _parse_version_body(body)
        async with self._lock.queue(user_id):
            version = await self.store.create_version(user_id, algorithm, auth_data)
        return {"version": str(version)}

    async def get_version(self, user_id: str, version: str | None) -> JsonDict:
        info = await self._find(user_id, version)
        if info is None:
            raise not_found("No current backup version" if version is None else "Unknown backup version")
        return {
            "algorithm": info.algorithm,
            "auth_data": info.auth_data,
            "version": str(info.version),
            "etag": str(info.etag),
            "count": await self.store.count_keys(user_id, info.version),
        }

    async def update_version(self, user_id: str, version: str, body: JsonDict) -> None:
        algorithm, auth_data = _parse_version_body(body)
        if "version" in body and body["version"] != version:
            raise invalid_param("The version in the body does not match the version in the path")
        async with self._lock.queue(user_id):
            info = await self._find(user_id, version)
            if info is None:
                raise not_found("Unknown backup version")
            if algorithm != info.algorithm:
                raise invalid_param("The algorithm of a backup cannot be changed")
            await self.store.update_auth_data(user_id, info.version, auth_data)

    async def delete_version(self, user_id: str, version: str) -> None:
        """Deleting a version that was already deleted succeeds; one that never existed is 404."""
        number = _version_number(version)
        async with self._lock.queue(user_id):
            if number is None or not await self.store.delete_version(user_id, number):
                raise not_found("Unknown backup version")

    async def _find(self, user_id: str, version: str | None) -> BackupVersion | None:
        if version is None:
            return await self.store.get_version(user_id)
        number = _version_number(version)
        return None if number is None else await self.store.get_version(user_id, number)

    # --- keys ----------------------------------------------------------------------------------

    async def get_keys(self, user_id: str, version: str, room_id: str | None, session_id: str | None) -> JsonDict:
        info = await self._find(user_id, version)
        if info is None:
            raise not_found("Unknown backup version")
        keys = await self.store.get_keys(user_id, info.version, room_id, session_id)
        if session_id is not None:
            key = keys.get(room_id or "", {}).get(session_id)
            if key is None:
                raise not_found("No room key found for this session")
            return key.to_json()
        rooms = {r: {"sessions": {s: k.to_json() for s, k in sessions.items()}} for r, sessions in keys.items()}
        if room_id is not None:
            return rooms.get(room_id, {"sessions": {}})
        return {"rooms": rooms}

    async def upload_keys(self, user_id: str, version: str, rooms: Any) -> JsonDict:
        uploaded = _parse_rooms(rooms)
        async with self._lock.queue(user_id):
            info = await self._writable_version(user_id, version)
            pairs = [(r, s) for r, sessions in uploaded.items() for s in sessions]
            existing = await self.store.get_keys_for_sessions(user_id, info.version, pairs)
            better: RoomKeys = {}
            for room_id, sessions in uploaded.items():
                for session_id, key in sessions.items():
                    current = existing.get(room_id, {}).get(session_id)
                    if current is None or _rank(key) > _rank(current):
                        better.setdefault(room_id, {})[session_id] = key
            etag, count = await self.store.put_keys(user_id, info.version, better)
        return {"etag": str(etag), "count": count}

    async def delete_keys(self, user_id: str, version: str, room_id: str | None, session_id: str | None) -> JsonDict:
        async with self._lock.queue(user_id):
            info = await self._find(user_id, version)
            if info is None:
                raise not_found("Unknown backup version")
            etag, count = await self.store.delete_keys(user_id, info.version, room_id, session_id)
        return {"etag": str(etag), "count": count}

    async def _writable_version(self, user_id: str, version: str) -> BackupVersion:
        """Keys may only be added to the newest version: an older one that still exists is
        403 M_WRONG_ROOM_KEYS_VERSION, naming the current one."""
        current = await self.store.get_version(user_id)
        if current is not None and str(current.version) == version:
            return current
        if current is None or await self._find(user_id, version) is None:
            raise not_found("Unknown backup version")
        raise MatrixError(403, "Wrong backup version.", "M_WRONG_ROOM_KEYS_VERSION", current_version=str(current.version))


def _parse_version_body(body: JsonDict) -> tuple[str, Any]:
    algorithm, auth_data = body.get("algorithm"), body.get("auth_data")
    if algorithm is None:
        raise missing_param("algorithm")
    if auth_data is None:
        raise missing_param("auth_data")
    if not isinstance(algorithm, str) or not algorithm:
        raise bad_json("'algorithm' must be a string")
    if not isinstance(auth_data, dict):
        raise bad_json("'auth_data' must be an object")
    return algorithm, auth_data


def _parse_rooms(rooms: Any) -> RoomKeys:
    if not isinstance(rooms, dict):
        raise bad_json("'rooms' must be an object")
    parsed: RoomKeys = {}
    for room_id, room in rooms.items():
        sessions = room.get("sessions") if isinstance(room, dict) else None
        if not isinstance(sessions, dict):
            raise bad_json(f"'rooms.{room_id}.sessions' must be an object")
        parsed[room_id] = {session_id: _parse_key(key) for session_id, key in sessions.items()}
    return parsed


def _parse_key(key: Any) -> RoomKey:
    if not isinstance(key, dict):
        raise bad_json("Each session key must be an object")
    for name, kind in (("first_message_index", int), ("forwarded_count", int), ("is_verified", bool), ("session_data", dict)):
        value = key.get(name)
        if value is None:
            raise missing_param(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise bad_json(f"'{name}' has the wrong type")
    if key["first_message_index"] < 0 or key["forwarded_count"] < 0:
        raise invalid_param("'first_message_index' and 'forwarded_count' must not be negative")
    return RoomKey(key["first_message_index"], key["forwarded_count"], key["is_verified"], key["session_data"])
