"""Creating accounts and logging devices in: usernames, users, devices and access tokens,
and the admin shared-secret registration API."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeserver.http.errors import MatrixError
from homeserver.storage.stores.registration import UserExistsError
from homeserver.util.stringutils import (
    LOCALPART_RE,
    make_user_id,
    new_access_token,
    new_device_id,
    random_string,
)

if TYPE_CHECKING:
    from homeserver.server import HomeServer

NONCE_LIFETIME_MS = 60 * 1000
MAX_USER_ID_LENGTH = 255


@dataclass(frozen=True)
class LoginResult:
    user_id: str
    device_id: str
    access_token: str


class RegistrationHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.registration

    def check_localpart(self, localpart: str) -> str:
        """The user id for `localpart`, or M_INVALID_USERNAME saying what is wrong."""
        if not localpart:
            raise MatrixError(400, "User ID cannot be empty", "M_INVALID_USERNAME")
        if not LOCALPART_RE.match(localpart):
            raise MatrixError(
                400, "User ID can only contain characters a-z, 0-9, or '=_-./+'", "M_INVALID_USERNAME"
            )
        if localpart.startswith("_"):
            raise MatrixError(400, "User ID may not begin with '_'", "M_INVALID_USERNAME")
        user_id = make_user_id(localpart, self.hs.hostname)
        if len(user_id) > MAX_USER_ID_LENGTH:
            raise MatrixError(400, f"User ID may not be longer than {MAX_USER_ID_LENGTH} characters", "M_INVALID_USERNAME")
        return user_id

    async def check_username_available(self, localpart: str) -> str:
        user_id = self.check_localpart(localpart)
        if await self.store.is_user_taken(user_id):
            raise MatrixError(400, "User ID already taken.", "M_USER_IN_USE")
        return user_id

    async def register_user(
        self, localpart: str | None, password: str | None, admin: bool = False, user_type: str | None = None,
        password_hash: str | None = None,
    ) -> str:
        """Create the account with a password or an already computed hash; a missing localpart
        gets a generated numeric one."""
        if password is not None:
            self.hs.auth_handler.check_password_policy(password)
            password_hash = await self.hs.auth_handler.hash_password(password)
        if localpart is None:
            user_id = await self._register_generated(password_hash, admin, user_type)
        else:
            user_id = self.check_localpart(localpart)
            try:
                await self.store.create_user(user_id, password_hash, admin, user_type)
            except UserExistsError as e:
                raise MatrixError(400, "User ID already taken.", "M_USER_IN_USE") from e
        await self.hs.profile_handler.create_profile(user_id)
        return user_id

    async def _register_generated(self, password_hash: str | None, admin: bool, user_type: str | None) -> str:
        for _ in range(10):
            user_id = make_user_id(random_string(10, "0123456789"), self.hs.hostname)
            try:
                await self.store.create_user(user_id, password_hash, admin, user_type)
                return user_id
            except UserExistsError:
                continue
        raise MatrixError(500, "Could not generate a free user ID")

    async def login_device(
        self, user_id: str, device_id: str | None, display_name: str | None
    ) -> LoginResult:
        """Create (or reuse) the device and issue a new access token bound to it."""
        if device_id is None:
            device_id = new_device_id()
        if self.hs.stores.devices.stream_ids.is_writer:
            await self.register_device(user_id, device_id, display_name)
        else:
            # Creating a device writes the device_lists stream: its writer does it.
            writer = self.hs.config.worker.writers_of("device_lists")[0]
            body = {"user_id": user_id, "device_id": device_id, "display_name": display_name}
            await self.hs.replication_client.call(writer, "register_device", body)
        token = new_access_token(user_id)
        await self.store.add_access_token(token, user_id, device_id)
        return LoginResult(user_id, device_id, token)

    async def register_device(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        """Create the device unless it exists (on a device_lists writer); True if created."""
        if not await self.hs.stores.devices.store_device(user_id, device_id, display_name):
            return False
        # Room-mates tracking this user's devices for encryption re-fetch their keys.
        await self.hs.device_list_handler.notify_device_change(user_id)
        return True

    # --- admin shared-secret registration ----------------------------------------------------

    async def new_nonce(self) -> str:
        nonce = secrets.token_hex(32)
        await self.store.store_nonce(nonce)
        return nonce

    async def register_with_shared_secret(
        self, nonce: str, username: str, password: str, admin: bool, user_type: str | None, mac: str
    ) -> str:
        secret = self.hs.config.registration.registration_shared_secret
        if not secret:
            raise MatrixError(400, "Shared secret registration is not enabled", "M_UNKNOWN")
        if not await self.store.consume_nonce(nonce, NONCE_LIFETIME_MS):
            raise MatrixError(400, "unrecognised nonce", "M_UNKNOWN")
        expected = shared_secret_mac(secret, nonce, username, password, admin, user_type)
        if not hmac.compare_digest(expected, mac.lower()):
            raise MatrixError(403, "HMAC incorrect", "M_FORBIDDEN")
        return await self.register_user(username.lower(), password, admin=admin, user_type=user_type)


def shared_secret_mac(
    secret: str, nonce: str, username: str, password: str, admin: bool, user_type: str | None = None
) -> str:
    """The HMAC-SHA1 the admin registration API expects, as lowercase hex."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
    parts = [nonce, username, password, "admin" if admin else "notadmin"]
    if user_type:
        parts.append(user_type)
    mac.update(b"\x00".join(p.encode("utf-8") for p in parts))
    return mac.hexdigest()
