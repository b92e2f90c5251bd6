"""The plug-in interface between `/sync` and the streams other than room events.

Each stream that `/sync` carries (account data, to-device, device lists, typing, receipts,
presence, push rules ...) provides a `SyncSource`: its position for the sync token, and how
to add what changed between two tokens to a response. `SyncHandler` calls every registered
source once per sync, after the rooms are computed, so a source can also add per-room data
(ephemeral events, room account data, unread counts) to the rooms in the response.

Sources are registered in `HomeServer.sync_sources`. A source must be set-based: a fixed
number of queries per sync, never one per room or per event.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

from homeserver.handlers.filtering import SyncFilter
from homeserver.http.auth import Requester
from homeserver.tokens import StreamToken


@dataclass
class SyncContext:
    requester: Requester
    # None for an initial sync.
    since: StreamToken | None
    now: StreamToken
    sync_filter: SyncFilter
    full_state: bool
    # Rooms the user is joined to now (whether or not they are in this response).
    joined_room_ids: list[str]
    # Rooms the user joined since `since` (their ephemeral data is sent in full).
    newly_joined_room_ids: set[str] = field(default_factory=set)

    @property
    def user_id(self) -> str:
        return self.requester.user_id

    def since_position(self, key: str) -> int | None:
        """This source's position in the `since` token (None on an initial sync)."""
        return None if self.since is None else min(getattr(self.since, key), getattr(self.now, key))


class SyncSource(Protocol):
    # The StreamToken field this source advances.
    key: str

    def current_position(self) -> int:
        """The position a sync token issued now carries for this stream."""

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        """Add what changed to `response` (top-level sections, or the rooms under
        `response["rooms"]["join"]`, creating a room's entry with `ensure_joined_room`);
        True when something was added."""


def ensure_joined_room(response: dict[str, Any], room_id: str) -> dict[str, Any]:
    """The response entry of a joined room, created empty when the room had no events."""
    rooms = response["rooms"]["join"]
    if room_id not in rooms:
        rooms[room_id] = {
            "timeline": {"events": [], "limited": False, "prev_batch": response["next_batch"]},
            "state": {"events": []},
            "account_data": {"events": []},
            "ephemeral": {"events": []},
        }
    return rooms[room_id]  # type: ignore[no-any-return]
