"""A user's devices: listing, renaming and deleting (which logs them out)."""

from typing import TYPE_CHECKING, Any

from homeserver.http.errors import not_found
from homeserver.storage.stores.devices import Device

if TYPE_CHECKING:
    from homeserver.server import HomeServer


def device_json(device: Device) -> dict[str, Any]:
    # Like Synapse, the last-seen keys are always present (null until the device is seen);
    # client libraries such as matrix-nio require them.
    return {
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ts": device.last_seen_ts,
        "last_seen_ip": device.last_seen_ip,
    }


class DeviceHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.devices

    async def list_devices(self, user_id: str) -> list[dict[str, Any]]:
        return [device_json(d) for d in await self.store.get_devices(user_id)]

    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any]:
        device = await self.store.get_device(user_id, device_id)
        if device is None:
            raise not_found("Device not found")
        return device_json(device)

    async def rename_device(self, user_id: str, device_id: str, display_name: str | None) -> None:
        if not await self.store.update_display_name(user_id, device_id, display_name):
            raise not_found("Device not found")

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete the devices (unknown ids are ignored) and their access tokens."""
        await self.store.delete_devices(user_id, device_ids)
        await self._devices_deleted(user_id, device_ids)

    async def delete_all_devices(self, user_id: str, except_device_id: str | None = None) -> None:
        device_ids = [d.device_id for d in await self.store.get_devices(user_id) if d.device_id != except_device_id]
        await self.store.delete_devices(user_id, device_ids)
        await self._devices_deleted(user_id, device_ids)

    async def _devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """A deleted device's encryption keys and undelivered to-device messages go with it;
        the users tracking its keys are told."""
        if not device_ids:
            return
        await self.hs.stores.e2e_keys.delete_keys_for_devices(user_id, device_ids)
        await self.hs.stores.to_device.delete_all_for_devices(user_id, device_ids)
        await self.hs.device_list_handler.notify_device_change(user_id)
