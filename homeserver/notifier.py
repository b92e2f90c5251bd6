"""The notifier: wakes long-polling `/sync` and `/events` requests when something they can see
changes, and keeps the in-memory "what changed since" caches that let an incremental sync skip
rooms and users with nothing new."""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Gauge
from twisted.internet import defer

from homeserver.events.event import Event
from homeserver.tokens import StreamToken
from homeserver.util.stream_change_cache import StreamChangeCache

logger = logging.getLogger(__name__)

waiting_requests = Gauge("homeserver_notifier_waiting_requests", "Long-polling requests waiting for news")
# The default of `max_waiting_syncs_per_user`.
DEFAULT_MAX_WAITING_PER_USER = 10


class WaitSuperseded(Exception):
    """A long-poll was ended early because the same user started more than the allowed number
    of them; the request should answer at once, empty, with the token it was given. `known`
    is the position it was waiting to see move."""

    def __init__(self, known: StreamToken):
        super().__init__("superseded by newer long-polling requests of the same user")
        self.known = known


class Notifier:
    def __init__(self, current_token: Callable[[], StreamToken], events_position: int):
        self.current_token = current_token
        self.room_changes = StreamChangeCache("room_events", events_position)
        self.max_waiting_per_user = DEFAULT_MAX_WAITING_PER_USER
        self._user_waiters: dict[str, set[defer.Deferred[None]]] = {}
        self._room_waiters: dict[str, set[defer.Deferred[None]]] = {}
        # Each user's waiting requests, oldest first (a dict keeps insertion order).
        self._by_age: dict[str, dict[defer.Deferred[None], StreamToken]] = {}

    # --- writers and replication call these ------------------------------------------------

    def on_new_room_events(self, events: Iterable[Event]) -> None:
        rooms: set[str] = set()
        users: set[str] = set()
        for event in events:
            ordering = event.internal_metadata.get("stream_ordering", 0)
            self.room_changes.entity_has_changed(event.room_id, ordering)
            rooms.add(event.room_id)
            if event.type == "m.room.member" and event.state_key:
                # The target may not be in the room yet (invites, joins).
                users.add(event.state_key)
        self.wake(users=users, rooms=rooms)

    def on_new_room_rows(self, rows: Iterable[Any], events_store: Any, wake: bool = True) -> tuple[set[str], set[str]]:
        """Events another process persisted (`EventRow`s, learned through replication):
        invalidate cached events they redact, record the changed rooms, wake waiters."""
        rooms: set[str] = set()
        users: set[str] = set()
        for row in rows:
            if row.redacts:
                events_store.invalidate_event(row.redacts)
            self.room_changes.entity_has_changed(row.room_id, row.stream_ordering)
            rooms.add(row.room_id)
            if row.type == "m.room.member" and row.state_key:
                users.add(row.state_key)
        if wake:
            self.wake(users=users, rooms=rooms)
        return users, rooms

    def wake_all(self) -> None:
        """Wake every waiting request (for streams whose rows say nothing about who cares)."""
        waiters = set().union(*self._user_waiters.values(), *self._room_waiters.values())
        self._user_waiters.clear()
        self._room_waiters.clear()
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    def wake(self, users: Iterable[str] = (), rooms: Iterable[str] = ()) -> None:
        waiters: set[defer.Deferred[None]] = set()
        for user in users:
            waiters |= self._user_waiters.pop(user, set())
        for room in rooms:
            waiters |= self._room_waiters.pop(room, set())
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    # --- long-polling readers ------------------------------------------------------------------

    async def wait_for_change(self, user_id: str, room_ids: Iterable[str], known: StreamToken, timeout_ms: int) -> bool:
        """Wait until a stream moves past `known` for this user or their rooms; False on timeout."""
        if self.current_token().is_after(known):
            return True
        from twisted.internet import reactor

        waiter: defer.Deferred[None] = defer.Deferred()
        rooms = list(room_ids)
        self._make_room_for(user_id)
        self._by_age.setdefault(user_id, {})[waiter] = known
        waiting_requests.inc()
        self._user_waiters.setdefault(user_id, set()).add(waiter)
        for room in rooms:
            self._room_waiters.setdefault(room, set()).add(waiter)

        def on_timeout() -> None:
            if not waiter.called:
                waiter.callback(None)

        timer: Any = reactor.callLater(timeout_ms / 1000.0, on_timeout)  # type: ignore[attr-defined,arg-type]
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()
            self._discard(waiter, user_id, rooms)
        return self.current_token().is_after(known)

    def _make_room_for(self, user_id: str) -> None:
        """Supersede the user's oldest waiting requests until a new one fits under the cap."""
        mine = self._by_age.get(user_id, {})
        while mine and len(mine) >= max(1, self.max_waiting_per_user):
            oldest, known = next(iter(mine.items()))
            del mine[oldest]
            if not oldest.called:
                oldest.errback(WaitSuperseded(known))

    def _discard(self, waiter: defer.Deferred[None], user_id: str, rooms: list[str]) -> None:
        mine = self._by_age.get(user_id)
        if mine is not None and mine.pop(waiter, None) is not None and not mine:
            del self._by_age[user_id]
        waiting_requests.dec()
        for key, table in [(user_id, self._user_waiters)] + [(room, self._room_waiters) for room in rooms]:
            group = table.get(key)
            if group is not None:
                group.discard(waiter)
                if not group:
                    del table[key]
