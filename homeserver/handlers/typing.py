"""Typing notifications: who is typing in which room, kept in the memory of the `typing`
stream's writer (nothing is stored), and the `m.typing` ephemeral events of `/sync`.

The stream position is a counter that moves on every change of a room's typing set (someone
starts, stops, times out, sends an event or leaves); each room remembers the position of its
last change. The counter starts at the clock's milliseconds when the process starts, so it
stays ahead of the positions a previous run handed to clients (unless that run made more
than a thousand changes a second on average).
"""

from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.handlers.ephemeral import add_ephemeral, ephemeral_allowed
from homeserver.handlers.sync_sources import SyncContext
from homeserver.http.auth import Requester
from homeserver.http.errors import forbidden, invalid_param
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

DEFAULT_TIMEOUT_MS = 30_000
# Longer requests are cut to this, as Synapse does.
MAX_TIMEOUT_MS = 120_000


class TypingHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.is_writer = hs.instance_name in hs.config.worker.writers_of("typing")
        # room -> user -> the timer that ends their typing notification
        self._typing: dict[str, dict[str, Any]] = {}
        self._room_positions: dict[str, int] = {}
        self._position = now_ms() if self.is_writer else 0
        if self.is_writer:
            hs.events_persister.on_persisted.append(self._on_persisted)

    def current_position(self) -> int:
        return self._position

    async def set_typing(self, requester: Requester, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        """Start (for `timeout_ms`, capped) or stop the requester's typing notification."""
        if user_id != requester.user_id:
            raise forbidden("Cannot set another user's typing state")
        if not room_id.startswith("!"):
            raise invalid_param(f"{room_id!r} is not a valid room ID")
        membership = await self.hs.stores.members.get_membership(room_id, user_id)
        if membership is None or membership[0] != "join":
            raise forbidden("You are not joined to this room")
        if typing:
            self._start(room_id, user_id, min(timeout_ms, MAX_TIMEOUT_MS))
        else:
            self._stop(room_id, user_id)
        await self.hs.presence_handler.bump_active(user_id)

    def typing_users(self, room_id: str) -> list[str]:
        return sorted(self._typing.get(room_id, {}))

    def room_position(self, room_id: str) -> int:
        """The position of the last change of the room's typing set (0: none since start)."""
        return self._room_positions.get(room_id, 0)

    # --- changes ------------------------------------------------------------------------------

    def _start(self, room_id: str, user_id: str, timeout_ms: int) -> None:
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor
        users = self._typing.setdefault(room_id, {})
        timer = users.get(user_id)
        if timer is not None and timer.active():
            timer.reset(timeout_ms / 1000.0)  # still typing: nothing others need to hear
            return
        users[user_id] = reactor.callLater(timeout_ms / 1000.0, self._stop, room_id, user_id)
        self._changed(room_id)

    def _stop(self, room_id: str, user_id: str) -> None:
        users = self._typing.get(room_id)
        timer = users.pop(user_id, None) if users is not None else None
        if timer is None:
            return
        if timer.active():
            timer.cancel()
        if not users:
            del self._typing[room_id]
        self._changed(room_id)

    def _changed(self, room_id: str) -> None:
        self._position += 1
        self._room_positions[room_id] = self._position
        self.hs.notifier.wake(rooms=[room_id])

    def _on_persisted(self, events: list[Event]) -> None:
        """Sending an event into a room, or leaving it, ends the sender's typing there."""
        for event in events:
            typing = self._typing.get(event.room_id)
            if not typing:
                continue
            if event.sender in typing:
                self._stop(event.room_id, event.sender)
            if event.type == "m.room.member" and event.state_key in typing and event.membership != "join":
                self._stop(event.room_id, event.state_key)


class TypingSyncSource:
    """Adds an `m.typing` event to each joined room whose typing set changed since the token
    (on an initial sync, or for a room joined since then: each room where someone types)."""

    key = "typing"

    def __init__(self, hs: "HomeServer"):
        self.handler = hs.typing_handler

    def current_position(self) -> int:
        return self.handler.current_position()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        since = context.since_position(self.key)
        upto = context.now.typing
        added = False
        for room_id in context.joined_room_ids:
            users = self.handler.typing_users(room_id)
            if since is None or context.full_state or room_id in context.newly_joined_room_ids:
                send = bool(users)
            else:
                send = since < self.handler.room_position(room_id) <= upto
            if send and ephemeral_allowed(context.sync_filter, room_id, "m.typing"):
                add_ephemeral(response, room_id, {"type": "m.typing", "content": {"user_ids": users}})
                added = True
        return added
