"""Typing notifications: who is typing in which room, kept in the memory of the `typing`
stream's writer (nothing is stored), and the `m.typing` ephemeral events of `/sync`.

Other processes keep a copy: when the writer announces a new position they fetch the rooms
that changed since theirs over HTTP replication (`typing_updates`); the writer remembers the
recent changes, and answers a reader too far behind (or one that started afresh) with every
room where someone is typing.

The stream position is a counter that moves on every change of a room's typing set (someone
starts, stops, times out, sends an event or leaves); each room remembers the position of its
last change. The counter starts at the clock's milliseconds when the process starts, so it
stays ahead of the positions a previous run handed to clients (unless that run made more
than a thousand changes a second on average).
"""

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.handlers.ephemeral import add_ephemeral, ephemeral_allowed
from homeserver.handlers.sync_sources import SyncContext
from homeserver.http.auth import Requester
from homeserver.http.errors import forbidden, invalid_param
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 30_000
# How many recent changes the writer remembers for readers catching up.
CHANGE_LOG_SIZE = 10_000
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
        # On the writer: (position, room) of recent changes, and the position before the oldest.
        self._changes: deque[tuple[int, str]] = deque()
        self._changes_floor = self._position
        # On other processes: room -> the users typing there, as last fetched from the writer.
        self._copied: dict[str, list[str]] = {}
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
        if not self.is_writer:
            return self._copied.get(room_id, [])
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
        self._changes.append((self._position, room_id))
        if len(self._changes) > CHANGE_LOG_SIZE:
            self._changes_floor = self._changes.popleft()[0]
        self.hs.notifier.wake(rooms=[room_id])
        self.hs.replication.on_local_write("typing")

    # --- replication ----------------------------------------------------------------------------

    def updates_since(self, since: int) -> dict[str, Any]:
        """On the writer: the rooms whose typing changed after `since`, with who types there
        now; every room with someone typing (`reset`) when `since` is not in the change log."""
        if self._changes_floor <= since <= self._position:
            rooms = {room for position, room in self._changes if position > since}
            reset = False
        else:
            rooms = set(self._typing)
            reset = True
        updates = [{"room_id": room, "user_ids": self.typing_users(room)} for room in sorted(rooms)]
        return {"position": self._position, "rooms": updates, "reset": reset}

    async def catch_up(self, writer: str, target: int) -> None:
        """On other processes: fetch what changed on the writer since our copy."""
        if self.is_writer or target == self._position:
            return
        since = self._position if target > self._position else 0  # behind 0: the writer restarted
        result = await self.hs.replication_client.call(writer, "typing_updates", {"since": since}, fence=False)
        self.apply_updates(result)

    def apply_updates(self, result: dict[str, Any]) -> None:
        position = int(result["position"])
        changed: set[str] = set()
        if result.get("reset"):
            changed |= set(self._copied)
            self._copied = {}
        for update in result.get("rooms", []):
            room_id, users = update["room_id"], list(update["user_ids"])
            changed.add(room_id)
            if users:
                self._copied[room_id] = users
            else:
                self._copied.pop(room_id, None)
        for room_id in changed:
            self._room_positions[room_id] = position
        self._position = position
        if changed:
            self.hs.notifier.wake(rooms=sorted(changed))

    async def on_replicated_rows(self, rows: list[Any]) -> None:
        """On the writer: events another process persisted end typing as local ones do (a
        member event ends its target's typing unless they are still joined)."""
        for row in rows:
            typing = self._typing.get(row.room_id)
            if not typing:
                continue
            if row.sender in typing:
                self._stop(row.room_id, row.sender)
            if row.type == "m.room.member" and row.state_key in typing:
                membership = await self.hs.stores.members.get_membership(row.room_id, row.state_key)
                if membership is None or membership[0] != "join":
                    self._stop(row.room_id, row.state_key)

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
