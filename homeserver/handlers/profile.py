"""Profiles: reading and changing a local user's display name and avatar URL, who may look
them up, the profile a new account starts with, and carrying a change into the member
events of every room the user is joined to."""

import logging
from typing import TYPE_CHECKING, Any

from homeserver.http.auth import Requester
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.storage.stores.profiles import Profile
from homeserver.util.stringutils import is_valid_user_id, user_id_localpart

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

MAX_DISPLAYNAME_LEN = 256
MAX_AVATAR_URL_LEN = 1000
FIELDS = ("displayname", "avatar_url")


def profile_body(profile: Profile) -> dict[str, Any]:
    """The set fields of a profile, as in `/profile` responses and member events."""
    body: dict[str, Any] = {}
    if profile.displayname is not None:
        body["displayname"] = profile.displayname
    if profile.avatar_url is not None:
        body["avatar_url"] = profile.avatar_url
    return body


class ProfileHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.store = hs.stores.profiles

    async def create_profile(self, user_id: str) -> None:
        """The profile of a new account: its display name starts as its localpart."""
        localpart = user_id_localpart(user_id)
        await self.store.create_profile(user_id, localpart)
        await self.hs.user_directory_handler.on_profile_changed(user_id, Profile(localpart, None))

    async def member_event_profile(self, user_id: str) -> dict[str, Any]:
        """`displayname` / `avatar_url` for the user's join events (only those that are set)."""
        profile = await self.store.get_profile(user_id)
        return profile_body(profile) if profile is not None else {}

    # --- lookups --------------------------------------------------------------------------------

    async def get_profile(self, requester_id: str | None, user_id: str) -> dict[str, Any]:
        profile = await self._lookup(requester_id, user_id)
        body = profile_body(profile)
        if not body:
            raise not_found("Profile was not found")
        return body

    async def get_field(self, requester_id: str | None, user_id: str, field: str) -> dict[str, Any]:
        value = profile_body(await self._lookup(requester_id, user_id)).get(field)
        if value is None:
            raise not_found(f"The user has no {field}")
        return {field: value}

    async def _lookup(self, requester_id: str | None, user_id: str) -> Profile:
        if not is_valid_user_id(user_id):
            raise invalid_param("Invalid user id")
        await self._check_lookup_allowed(requester_id, user_id)
        profile = await self.store.get_profile(user_id)
        if profile is None:
            raise not_found("Profile was not found")
        return profile

    async def _check_lookup_allowed(self, requester_id: str | None, user_id: str) -> None:
        """With `limit_profile_requests_to_users_who_share_rooms` (which acts on authenticated
        lookups, i.e. with `require_auth_for_profile_requests`), only room-mates may look."""
        if requester_id is None or requester_id == user_id:
            return
        if not self.hs.config.server.limit_profile_requests_to_users_who_share_rooms:
            return
        members = self.hs.stores.members
        mine = set(await members.get_rooms_for_user(requester_id))
        if mine.isdisjoint(await members.get_rooms_for_user(user_id)):
            raise forbidden("Profile isn't available")

    # --- changes ----------------------------------------------------------------------------------

    async def set_field(self, requester: Requester, user_id: str, field: str, value: Any) -> None:
        """Set the requester's own `displayname` or `avatar_url` ('' unsets it), then update
        the user directory and the user's member events."""
        if not is_valid_user_id(user_id):
            raise invalid_param("Invalid user id")
        if user_id != requester.user_id and not requester.is_admin:
            raise forbidden(f"Cannot set another user's {field}")
        if user_id != requester.user_id and await self.hs.stores.registration.get_user(user_id) is None:
            raise not_found("User not found")
        profile = await self.store.set_field(user_id, field, _validated(field, value))
        await self.hs.user_directory_handler.on_profile_changed(user_id, profile)
        await self._update_join_events(user_id, profile)

    async def _update_join_events(self, user_id: str, profile: Profile) -> None:
        """A new join event carrying the profile in every room the user is joined to; a room
        that refuses it is logged and skipped."""
        content = {"membership": "join", **profile_body(profile)}
        for room_id in await self.hs.stores.members.get_rooms_for_user(user_id):
            try:
                await self.hs.event_creation_handler.create_and_send(
                    {"type": "m.room.member", "room_id": room_id, "sender": user_id, "state_key": user_id, "content": content},
                )
            except MatrixError as e:
                logger.warning("Could not update the member event of %s in %s: %s", user_id, room_id, e.msg)


def _validated(field: str, value: Any) -> str | None:
    if not isinstance(value, str):
        raise invalid_param(f"'{field}' must be a string")
    limit = MAX_DISPLAYNAME_LEN if field == "displayname" else MAX_AVATAR_URL_LEN
    if len(value) > limit:
        raise invalid_param(f"'{field}' is too long (at most {limit} characters)")
    if field == "displayname":
        value = value.strip()
    return value or None
