"""To-device messaging: `PUT /sendToDevice` queues a message per recipient device, and the
`to_device` sync source delivers a device's messages, deleting them only once a later sync
acknowledges them by presenting a token at or past their position."""

import logging
from typing import TYPE_CHECKING, Any

from homeserver.handlers.sync_sources import SyncContext
from homeserver.http.auth import Requester
from homeserver.http.errors import bad_json, invalid_param
from homeserver.tokens import StreamToken
from homeserver.util.caches import LruCache
from homeserver.util.stringutils import is_valid_user_id

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

# Messages per sync response; the token then stops at the last one delivered.
MAX_MESSAGES_PER_SYNC = 100


class ToDeviceHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.to_device
        self.devices = hs.stores.devices

    async def send(self, requester: Requester, message_type: str, txn_id: str, messages: Any) -> None:
        """Queue `messages` ({user_id: {device_id or "*": content}}) once per transaction id."""
        if not message_type or len(message_type) > 255:
            raise invalid_param("Invalid event type")
        by_user = _validate_messages(messages)
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for user_id, per_device in by_user.items():
            if user_id.partition(":")[2] != self.hs.hostname:
                logger.info("Dropping to-device message for remote user %s: federation is not supported yet", user_id)
                continue
            rows += await self._expand(user_id, per_device)
        scope = requester.device_id or requester.access_token
        stream_id = await self.store.add_messages(requester.user_id, scope, txn_id, message_type, rows)
        if stream_id is not None and rows:
            self.hs.notifier.wake(users={user_id for user_id, _, _ in rows})

    async def _expand(self, user_id: str, per_device: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """One (user, device, content) row per existing device; a named device wins over "*"."""
        existing = {d.device_id for d in await self.devices.get_devices(user_id)}
        targets: dict[str, dict[str, Any]] = {}
        if "*" in per_device:
            targets = dict.fromkeys(existing, per_device["*"])
        for device_id, content in per_device.items():
            if device_id != "*" and device_id in existing:
                targets[device_id] = content
        return [(user_id, device_id, content) for device_id, content in sorted(targets.items())]


def _validate_messages(messages: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(messages, dict):
        raise bad_json("'messages' must be an object")
    for user_id, per_device in messages.items():
        if not is_valid_user_id(user_id):
            raise invalid_param(f"Invalid user id {user_id!r}")
        if not isinstance(per_device, dict):
            raise bad_json(f"'messages.{user_id}' must be an object of device ids")
        for device_id, content in per_device.items():
            if not isinstance(content, dict):
                raise bad_json(f"The message for {user_id} {device_id} must be an object")
    return messages


class ToDeviceSyncSource:
    """Adds `to_device.events` for the syncing device; the sync token's `to_device` position
    says how far the device has received. The stream's `changes` (recipients) lets a sync
    skip both queries when nothing was sent to the user."""

    key = "to_device"

    def __init__(self, hs: "HomeServer"):
        self.store = hs.stores.to_device
        self.stream_ids = hs.stores.to_device_ids
        # (user, device) -> the position up to which this process deleted acknowledged messages.
        self._deleted_upto: LruCache[tuple[str, str], int] = LruCache("to_device_deleted_upto", 50_000)

    def current_position(self) -> int:
        return self.stream_ids.get_current_token()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        device_id = context.requester.device_id
        if device_id is None:
            return False
        user_id = context.user_id
        since_position = context.since_position(self.key)
        since = since_position or 0
        changes = self.stream_ids.changes
        if since_position is not None:
            key = (user_id, device_id)
            deleted_upto = self._deleted_upto.get(key)
            # Nothing sent to the user since the last delete here: nothing left to delete.
            if deleted_upto is None or deleted_upto < since and changes.has_entity_changed(user_id, deleted_upto):
                await self.store.delete_messages_for_device(user_id, device_id, since)
                self._deleted_upto.set(key, since)
            if not changes.has_entity_changed(user_id, since):
                return False
        messages = await self.store.get_messages_for_device(user_id, device_id, since, context.now.to_device, MAX_MESSAGES_PER_SYNC)
        if not messages:
            return False
        response["to_device"]["events"] = [{"sender": m.sender, "type": m.type, "content": m.content} for m in messages]
        if len(messages) == MAX_MESSAGES_PER_SYNC:
            # Stop the token at the last message sent, so the rest come with the next sync.
            token = StreamToken.parse(response["next_batch"]).copy_and_replace(self.key, messages[-1].stream_id)
            response["next_batch"] = token.encode()
        return True

