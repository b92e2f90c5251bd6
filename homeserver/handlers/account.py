"""Account management: changing the password, deactivating, logging out."""

from typing import TYPE_CHECKING, Any

from homeserver.http.auth import Requester

if TYPE_CHECKING:
    from homeserver.server import HomeServer


class AccountHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    async def change_password(self, user_id: str, password_hash: str, logout_devices: bool, requester: Requester | None) -> None:
        """Store the new password hash; optionally log out every other device."""
        await self.hs.stores.registration.set_password_hash(user_id, password_hash)
        if logout_devices:
            keep_device = requester.device_id if requester else None
            await self.hs.device_handler.delete_all_devices(user_id, except_device_id=keep_device)
            await self.hs.stores.registration.delete_access_tokens_for_user(
                user_id, except_token=requester.access_token if requester else None
            )

    async def deactivate(self, user_id: str) -> None:
        """Log out every device and make the account unusable; the user id stays reserved."""
        await self.hs.device_handler.delete_all_devices(user_id)
        await self.hs.stores.registration.delete_access_tokens_for_user(user_id)
        await self.hs.stores.registration.set_deactivated(user_id)

    async def logout(self, requester: Requester) -> None:
        """Invalidate the access token and delete its device."""
        if requester.device_id is not None:
            await self.hs.device_handler.delete_devices(requester.user_id, [requester.device_id])
        await self.hs.stores.registration.delete_access_token(requester.access_token)

    async def logout_all(self, user_id: str) -> None:
        await self.hs.device_handler.delete_all_devices(user_id)
        await self.hs.stores.registration.delete_access_tokens_for_user(user_id)

    async def get_threepids(self, user_id: str) -> list[dict[str, Any]]:
        """Third-party identifiers bound to the account: none yet, as neither email nor phone
        verification exists."""
        return []
