"""Account data: a user's private per-account and per-room JSON (including room tags, the
room account data `m.tag`), who may read and write it, and how its changes reach `/sync`."""

from typing import TYPE_CHECKING, Any

from homeserver.handlers.filtering import EventFilter
from homeserver.handlers.sync_sources import SyncContext, ensure_joined_room
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.storage.stores.account_data import GLOBAL, TAG_TYPE, AccountDataSet

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Types the server maintains itself: clients change them through their own endpoints.
SERVER_CONTROLLED = {
    "m.fully_read": "Cannot set m.fully_read through this API. Use /rooms/{roomId}/read_markers",
    "m.push_rules": "Cannot set m.push_rules through this API. Use /pushrules",
}
MAX_TAG_BYTES = 255


def _check_owner(requester_id: str, user_id: str) -> None:
    if requester_id != user_id:
        raise forbidden("Cannot access account data of other users")


def _check_room_id(room_id: str) -> None:
    if not room_id.startswith("!") or ":" not in room_id:
        raise invalid_param(f"{room_id!r} is not a valid room ID")


class AccountDataHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.account_data

    # --- the internal API (also used by read markers) --------------------------------------

    async def set_global_account_data(self, user_id: str, type: str, content: dict[str, Any]) -> int:
        """Replace a global account data type; returns its stream position."""
        return await self._set(user_id, GLOBAL, type, content)

    async def set_room_account_data(self, user_id: str, room_id: str, type: str, content: dict[str, Any]) -> int:
        """Replace a room account data type; returns its stream position."""
        return await self._set(user_id, room_id, type, content)

    async def _set(self, user_id: str, room_id: str, type: str, content: dict[str, Any]) -> int:
        """Write on this process when it writes the stream, else on the stream's writer over
        HTTP replication (which returns once this process has seen the write)."""
        if not self.store.stream_ids.is_writer:
            writer = self.hs.config.worker.writers_of("account_data")[0]
            body = {"user_id": user_id, "room_id": room_id or None, "type": type, "content": content}
            result = await self.hs.replication_client.call(writer, "account_data", body)
            return int(result["position"])
        position = await self.store.set_account_data(user_id, room_id, type, content)
        self.hs.notifier.wake(users=[user_id])
        return position

    async def get_global(self, user_id: str, type: str) -> dict[str, Any] | None:
        return await self.store.get_account_data(user_id, GLOBAL, type)

    async def get_room(self, user_id: str, room_id: str, type: str) -> dict[str, Any] | None:
        return await self.store.get_account_data(user_id, room_id, type)

    # --- the client endpoints -----------------------------------------------------------------

    async def put_for_client(
        self, requester_id: str, user_id: str, room_id: str | None, type: str, content: dict[str, Any],
    ) -> None:
        _check_owner(requester_id, user_id)
        if room_id is not None:
            _check_room_id(room_id)
        if type in SERVER_CONTROLLED:
            raise MatrixError(405, SERVER_CONTROLLED[type], "M_BAD_JSON")
        if room_id is None:
            await self.set_global_account_data(user_id, type, content)
        else:
            await self.set_room_account_data(user_id, room_id, type, content)

    async def get_for_client(self, requester_id: str, user_id: str, room_id: str | None, type: str) -> dict[str, Any]:
        _check_owner(requester_id, user_id)
        if room_id is not None:
            _check_room_id(room_id)
        content = await (self.get_global(user_id, type) if room_id is None else self.get_room(user_id, room_id, type))
        if content is None:
            raise not_found("Account data not found")
        return content

    # --- tags -------------------------------------------------------------------------------------

    async def get_tags(self, requester_id: str, user_id: str, room_id: str) -> dict[str, Any]:
        _check_owner(requester_id, user_id)
        content = await self.get_room(user_id, room_id, TAG_TYPE) or {}
        tags = content.get("tags")
        return tags if isinstance(tags, dict) else {}

    async def add_tag(self, requester_id: str, user_id: str, room_id: str, tag: str, content: dict[str, Any]) -> None:
        _check_owner(requester_id, user_id)
        if len(tag.encode("utf-8")) > MAX_TAG_BYTES:
            raise invalid_param(f"A tag may be at most {MAX_TAG_BYTES} bytes long")
        order = content.get("order")
        if order is not None and (isinstance(order, bool) or not isinstance(order, int | float)):
            raise MatrixError(400, "'order' must be a number", "M_BAD_JSON")
        if await self.hs.stores.members.get_membership(room_id, user_id) is None:
            raise forbidden(f"{user_id} has no membership in room {room_id}")
        await self.store.update_tag(user_id, room_id, tag, content)
        self.hs.notifier.wake(users=[user_id])

    async def remove_tag(self, requester_id: str, user_id: str, room_id: str, tag: str) -> None:
        _check_owner(requester_id, user_id)
        if await self.store.update_tag(user_id, room_id, tag, None) is not None:
            self.hs.notifier.wake(users=[user_id])


def _type_allowed(event_filter: EventFilter, type: str) -> bool:
    """The `types` / `not_types` part of a filter (a trailing `*` matches any suffix)."""

    def matches(patterns: list[str]) -> bool:
        return any(type == p or (p.endswith("*") and type.startswith(p[:-1])) for p in patterns)

    if event_filter.types is not None and not matches(event_filter.types):
        return False
    return not matches(event_filter.not_types)


def _events(data: dict[str, dict[str, Any]], event_filter: EventFilter) -> list[dict[str, Any]]:
    return [{"type": t, "content": c} for t, c in sorted(data.items()) if _type_allowed(event_filter, t)]


class AccountDataSyncSource:
    """Adds global account data to `account_data` and room account data (tags included) to
    each joined room of a `/sync` response: everything on an initial sync, otherwise what
    changed since the token plus all of it for rooms joined since then."""

    key = "account_data"

    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.account_data

    def current_position(self) -> int:
        return self.hs.stores.account_data_ids.get_current_token()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        upto = context.now.account_data
        since = context.since_position(self.key)
        if since is None or context.full_state:
            data = await self.store.get_all_for_user(context.user_id, upto)
        elif not context.newly_joined_room_ids and not self.hs.stores.account_data_ids.changes.has_entity_changed(
                context.user_id, since):
            return False
        else:
            data = await self.store.get_changed_for_user(context.user_id, since, upto, context.newly_joined_room_ids)
        return self._add(context, response, data)

    def _add(self, context: SyncContext, response: dict[str, Any], data: AccountDataSet) -> bool:
        sync_filter = context.sync_filter
        added = False
        global_events = _events(data.global_data, sync_filter.account_data)
        if global_events:
            response["account_data"]["events"].extend(global_events)
            added = True
        joined = set(context.joined_room_ids)
        room_filter = sync_filter.room_account_data
        for room_id, room_data in sorted(data.rooms.items()):
            if not sync_filter.allows_room(room_id) or not room_filter.allows_room(room_id):
                continue
            events = _events(room_data, room_filter)
            if not events:
                continue
            if room_id in joined:
                room = ensure_joined_room(response, room_id)
            elif room_id in response["rooms"]["leave"]:
                room = response["rooms"]["leave"][room_id]
            else:
                continue
            room.setdefault("account_data", {"events": []})["events"].extend(events)
            added = True
        return added
