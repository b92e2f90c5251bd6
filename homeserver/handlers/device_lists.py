"""Device list tracking for end-to-end encryption: which users' devices or keys a user should
re-fetch (`changed`) or stop tracking (`left`) between two sync tokens, for `/sync` and
`/keys/changes`; waking the syncs that care when a user's devices change; and the
`device_lists` sync source, which also reports the syncing device's key counts."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeserver.handlers.sync_sources import SyncContext
from homeserver.tokens import StreamToken

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Always reported, even at zero, so that clients know to upload keys of this algorithm.
DEFAULT_ONE_TIME_KEY_ALGORITHM = "signed_curve25519"


@dataclass
class DeviceListChanges:
    changed: set[str] = field(default_factory=set)
    left: set[str] = field(default_factory=set)


@dataclass
class _MembershipMoves:
    """Changes in "joined-ness" between two positions, the user's own and other users'."""

    joined_rooms: set[str] = field(default_factory=set)
    left_rooms: set[str] = field(default_factory=set)
    joined_users: set[str] = field(default_factory=set)
    left_users: set[str] = field(default_factory=set)

    def record(self, user_id: str, room_id: str, target: str, membership: str, previous: str | None) -> None:
        now_joined, was_joined = membership == "join", previous == "join"
        if now_joined == was_joined:
            return
        if target == user_id:
            added, removed, key = self.joined_rooms, self.left_rooms, room_id
        else:
            added, removed, key = self.joined_users, self.left_users, target
        if now_joined:
            added.add(key)
            removed.discard(key)
        else:
            removed.add(key)
            added.discard(key)


class DeviceListHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.device_lists

    async def get_changes(self, user_id: str, since: StreamToken, now: StreamToken) -> DeviceListChanges:
        """Users to re-fetch keys of, and users no longer sharing any room, in (since, now]."""
        from_events, to_events = min(since.events, now.events), now.events
        from_devices, to_devices = min(since.device_lists, now.device_lists), now.device_lists
        result = DeviceListChanges()
        if from_devices < to_devices:
            result.changed = await self.store.get_changed_users_sharing_rooms(user_id, from_devices, to_devices)
            result.changed |= await self.hs.stores.e2e_keys.get_users_whose_signatures_changed(user_id, from_devices, to_devices)
        if from_events < to_events and await self._memberships_moved(user_id, from_events):
            moves = _MembershipMoves()
            for room_id, target, membership, previous in await self.store.get_membership_changes(user_id, from_events, to_events):
                moves.record(user_id, room_id, target, membership, previous)
            result.changed |= moves.joined_users | await self.store.get_joined_members(list(moves.joined_rooms))
            candidates = moves.left_users | await self.store.get_joined_members(list(moves.left_rooms))
            candidates.discard(user_id)
            result.left = candidates - await self.store.filter_users_sharing_rooms(user_id, candidates)
            result.changed -= result.left
        return result

    async def _memberships_moved(self, user_id: str, since: int) -> bool:
        """Whether the user's memberships, or the members of a room they are in, may have
        changed after `since` (from the events stream's change cache: no query when not)."""
        changes = self.hs.stores.event_ids.changes
        if changes.has_entity_changed(user_id, since):
            return True
        memberships = await self.hs.stores.members.get_memberships_for_user(user_id)
        return bool(changes.get_entities_changed([r for r, m, _, _ in memberships if m == "join"], since))

    async def notify_device_change(self, user_id: str) -> None:
        """Wake the syncs of the user and of everyone sharing a room with them."""
        rooms = await self.hs.stores.members.get_rooms_for_user(user_id)
        self.hs.notifier.wake(users=[user_id], rooms=rooms)


class DeviceListsSyncSource:
    """`device_lists` on incremental syncs, and on every sync the syncing device's one-time
    key counts and unused fallback key types."""

    key = "device_lists"

    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stream_ids = hs.stores.device_lists_ids
        self.keys = hs.stores.e2e_keys

    def current_position(self) -> int:
        return self.stream_ids.get_current_token()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        await self._add_key_counts(context, response)
        if context.since is None:
            return False
        changes = await self.hs.device_list_handler.get_changes(context.user_id, context.since, context.now)
        response["device_lists"] = {"changed": sorted(changes.changed), "left": sorted(changes.left)}
        return bool(changes.changed or changes.left)

    async def _add_key_counts(self, context: SyncContext, response: dict[str, Any]) -> None:
        device_id = context.requester.device_id
        if device_id is None:
            return
        keys = await self.keys.get_key_counts(context.user_id, device_id)
        response["device_one_time_keys_count"] = {DEFAULT_ONE_TIME_KEY_ALGORITHM: 0, **keys.one_time}
        response["device_unused_fallback_key_types"] = list(keys.unused_fallback_types)
