"""Presence: each user's online status (`online`, `unavailable`, `offline`), status message
and last activity; who may see it (the user and everyone sharing a joined room with them);
and the `m.presence` events of `/sync`.

The state machine runs on the `presence` stream's writer and keeps every user who is not
offline in memory. Other processes tell it about the syncs they serve with `USER_SYNC`
replication commands (a user's first sync there starts, or their last one ends) and read
presence from the database. Clients change it with `PUT /presence/{userId}/status`, by syncing (with
`set_presence`, `online` unless told otherwise) and by activity (typing, receipts). Timers,
checked by a periodic job that only looks at users whose timers are due, make an online user
`unavailable` after `presence.idle_timeout` without activity and anyone `offline` once
`presence.sync_online_timeout` has passed since their last sync ended. `currently_active` is
true while the last activity is within `presence.last_active_granularity`.

A change others should hear about (state, status message, `currently_active`, a jump in
last activity) is written to `presence_stream` at a new stream position and wakes the syncs
of the user's rooms; timestamps alone are written in place once a minute and at shutdown.
"""

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task

from homeserver.handlers.ephemeral import type_allowed
from homeserver.handlers.filtering import EventFilter
from homeserver.handlers.sync_sources import SyncContext
from homeserver.http.errors import LimitExceeded, forbidden, invalid_param
from homeserver.storage.stores.presence import OFFLINE, UserPresence
from homeserver.util.clock import now_ms
from homeserver.util.linearizer import Linearizer
from homeserver.util.stringutils import is_valid_user_id

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

ONLINE = "online"
UNAVAILABLE = "unavailable"
PRESENCE_STATES = (ONLINE, UNAVAILABLE, OFFLINE)
# How often due timers are looked at, at most (shorter when a configured timer is shorter).
CHECK_INTERVAL_MS = 5_000
PERSIST_INTERVAL_S = 60.0
# On a process that does not write presence: a user is reported as no longer syncing this
# long after their last sync ended, and their activity is refreshed this often while syncing.
SYNC_LINGER_SECONDS = 10.0
SYNC_REFRESH_MS = 30_000


def format_presence(state: UserPresence, now: int) -> dict[str, Any]:
    """The client form of a presence: `presence`, `currently_active`, and `last_active_ago`
    and `status_msg` when known."""
    content: dict[str, Any] = {"presence": state.state, "currently_active": state.state == ONLINE and state.currently_active}
    if state.last_active_ts:
        content["last_active_ago"] = max(0, now - state.last_active_ts)
    if state.status_msg:
        content["status_msg"] = state.status_msg
    return content


class WheelTimer:
    """Users to look at again, in buckets of `granularity_ms`: inserting and fetching cost
    in proportion to the users concerned, never to everyone tracked."""

    def __init__(self, granularity_ms: int):
        self.granularity_ms = granularity_ms
        self._buckets: dict[int, set[str]] = {}

    def insert(self, user_id: str, when_ms: int) -> None:
        bucket = -(-when_ms // self.granularity_ms)  # the first bucket boundary at or after `when_ms`
        self._buckets.setdefault(bucket, set()).add(user_id)

    def fetch(self, now: int) -> set[str]:
        due: set[str] = set()
        for bucket in [b for b in self._buckets if b * self.granularity_ms <= now]:
            due |= self._buckets.pop(bucket)
        return due


class PresenceHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.config = hs.config.presence
        self.store = hs.stores.presence
        self.is_writer = hs.instance_name in hs.config.worker.writers_of("presence")
        # Whether this process runs the state machine: clients' requests and activity count.
        self.tracking = self.config.track and self.is_writer
        self._states: dict[str, UserPresence] = {}
        # Syncs running here: user -> how many (and, on other processes, the last set_presence).
        self._syncs: dict[str, int] = {}
        self._sync_presence: dict[str, str] = {}
        # On the writer: instance -> users syncing there (from USER_SYNC commands).
        self._remote_syncs: dict[str, set[str]] = {}
        # On other processes: when each user's sync was last reported, and the timers that
        # report the end of a user's syncing once they stop.
        self._reported: dict[str, int] = {}
        self._stop_timers: dict[str, Any] = {}
        self._unpersisted: set[str] = set()
        config = self.config
        self._check_ms = max(100, min(CHECK_INTERVAL_MS, config.sync_online_timeout_ms, config.last_active_granularity_ms))
        self._timers = WheelTimer(self._check_ms)
        self._linearizer = Linearizer()
        self._loops: list[task.LoopingCall] = []

    async def start(self) -> None:
        """On the presence writer: load everyone who is not offline and start the timers. The
        first check waits one `sync_online_timeout`, so clients cut off by a restart may
        reconnect before they are marked offline."""
        if not self.tracking:
            return
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor
        now = now_ms()
        for state in await self.store.get_not_offline():
            self._states[state.user_id] = state
            self._schedule(state, now)
        checker = task.LoopingCall(self._run_timeouts)
        persister = task.LoopingCall(self._run_persist)
        self._loops = [checker, persister]
        reactor.callLater(self.config.sync_online_timeout_ms / 1000.0, checker.start, self._check_ms / 1000.0)
        persister.start(PERSIST_INTERVAL_S, now=False)
        reactor.addSystemEventTrigger("before", "shutdown", self._run_persist)

    # --- the client API ------------------------------------------------------------------------------

    async def get_status(self, requester_id: str, user_id: str) -> dict[str, Any]:
        """`GET /presence/{userId}/status`: for the user and those sharing a room with them."""
        if not is_valid_user_id(user_id):
            raise invalid_param(f"{user_id!r} is not a valid user ID")
        if not self.config.enabled:
            return {"presence": OFFLINE}
        if requester_id != user_id and not await self.is_visible(user_id, requester_id):
            raise forbidden("You are not allowed to see their presence")
        [state] = await self.get_states([user_id], include_unknown=True)
        return format_presence(state, now_ms())

    async def set_status(self, requester_id: str, user_id: str, presence: str, status_msg: str | None) -> None:
        """`PUT /presence/{userId}/status`: only for yourself; ignored while presence is
        disabled or untracked."""
        if requester_id != user_id:
            raise forbidden("Can only set your own presence state")
        if presence not in PRESENCE_STATES:
            raise invalid_param(f"presence must be one of {', '.join(PRESENCE_STATES)}")
        self.hs.ratelimiter("rc_presence.per_user").check(user_id)
        if not self.tracking:
            return

        def change(prev: UserPresence, now: int) -> UserPresence:
            new = prev.copy_and_replace(state=presence, status_msg=status_msg or None, last_user_sync_ts=now)
            return new.copy_and_replace(last_active_ts=now) if presence == ONLINE else new

        await self._update(user_id, change)

    @asynccontextmanager
    async def user_syncing(self, user_id: str, set_presence: str) -> AsyncIterator[None]:
        """Around a `/sync`: marks the user `set_presence` (unless `offline`, or rate-limited
        by `rc_presence`) and keeps them from going offline while the request runs."""
        if not self.is_writer:
            async with self._syncing_elsewhere(user_id, set_presence):
                yield
            return
        if not self._sync_affects_presence(user_id, set_presence):
            yield
            return
        self._syncs[user_id] = self._syncs.get(user_id, 0) + 1
        try:
            await self._safe_update(user_id, lambda prev, now: _synced(prev, now, set_presence))
            yield
        finally:
            self._syncs[user_id] -= 1
            if not self._syncs[user_id]:
                del self._syncs[user_id]
            await self._safe_update(user_id, lambda prev, now: prev.copy_and_replace(last_user_sync_ts=now))

    @asynccontextmanager
    async def _syncing_elsewhere(self, user_id: str, set_presence: str) -> AsyncIterator[None]:
        """`user_syncing` on a process that does not write presence. A user who starts
        syncing here (or changes `set_presence`) is reported to the writer over HTTP and the
        sync waits for the change, so its token already carries it (as on the writer itself);
        while they keep syncing a cheap `USER_SYNC` refreshes their activity now and then; the
        end is reported `SYNC_LINGER_SECONDS` after their last sync, so back-to-back
        long-polls are one continuous sync."""
        if not self.config.track or not self.config.enabled or set_presence == OFFLINE:
            yield
            return
        linger = self._stop_timers.pop(user_id, None)
        if linger is not None and linger.active():
            linger.cancel()
        self._syncs[user_id] = self._syncs.get(user_id, 0) + 1
        now = now_ms()
        if self._sync_presence.get(user_id) != set_presence:
            self._sync_presence[user_id] = set_presence
            self._reported[user_id] = now
            await self._report_sync_start(user_id, set_presence)
        elif now - self._reported.get(user_id, 0) > SYNC_REFRESH_MS and self._sync_rate_allows(user_id):
            self._reported[user_id] = now
            self.hs.replication.send_user_sync(user_id, True, set_presence)
        try:
            yield
        finally:
            self._syncs[user_id] -= 1
            if not self._syncs[user_id]:
                del self._syncs[user_id]
                from twisted.internet import reactor as twisted_reactor

                reactor: Any = twisted_reactor
                self._stop_timers[user_id] = reactor.callLater(SYNC_LINGER_SECONDS, self._report_sync_end, user_id)

    async def _report_sync_start(self, user_id: str, set_presence: str) -> None:
        writer = self.hs.config.worker.writers_of("presence")[0]
        body = {"instance": self.hs.instance_name, "user_id": user_id, "active": True, "presence": set_presence}
        try:
            await self.hs.replication_client.call(writer, "presence_user_sync", body)
        except Exception as e:  # the sync goes on; the writer hears of it through Redis
            logger.warning("Could not report %s syncing to %s (%s); sending USER_SYNC instead", user_id, writer, e)
            self.hs.replication.send_user_sync(user_id, True, set_presence)

    def _report_sync_end(self, user_id: str) -> None:
        self._stop_timers.pop(user_id, None)
        self._sync_presence.pop(user_id, None)
        self._reported.pop(user_id, None)
        self.hs.replication.send_user_sync(user_id, False)

    def remote_syncs(self) -> list[tuple[str, str]]:
        """On other processes: (user, set_presence) of each user reported as syncing here."""
        return sorted(self._sync_presence.items())

    async def on_remote_sync_command(self, name: str, body: dict[str, Any]) -> None:
        """On the writer: a `USER_SYNC` or `CLEAR_USER_SYNC` from another process."""
        instance = body.get("instance")
        if not self.tracking or not isinstance(instance, str):
            return
        if name == "CLEAR_USER_SYNC":
            self._remote_syncs.pop(instance, None)
            return
        user_id, presence = body.get("user_id"), body.get("presence", ONLINE)
        if not isinstance(user_id, str) or presence not in PRESENCE_STATES:
            return
        syncing = self._remote_syncs.setdefault(instance, set())
        if body.get("active"):
            syncing.add(user_id)
            await self._safe_update(user_id, lambda prev, now: _synced(prev, now, presence))
        else:
            syncing.discard(user_id)
            await self._safe_update(user_id, lambda prev, now: prev.copy_and_replace(last_user_sync_ts=now))

    def _is_syncing(self, user_id: str) -> bool:
        if user_id in self._syncs:
            return True
        return any(user_id in users for users in self._remote_syncs.values())

    def _forget_silent_instances(self) -> None:
        """Syncs reported by a process that stopped answering end with it."""
        for instance in [i for i in self._remote_syncs if not self.hs.replication.is_alive(i)]:
            logger.info("Forgetting the syncs of %s, which went silent", instance)
            del self._remote_syncs[instance]

    async def bump_active(self, user_id: str) -> None:
        """The user did something (typed, sent a receipt): they are active now. Users who
        are offline stay so (only syncing or setting presence brings them online)."""
        if not self.tracking or user_id not in self._states:
            return

        def change(prev: UserPresence, now: int) -> UserPresence:
            if prev.state == OFFLINE:
                return prev
            return prev.copy_and_replace(state=ONLINE, last_active_ts=now)

        await self._safe_update(user_id, change)

    # --- reads ----------------------------------------------------------------------------------------

    async def is_visible(self, observed: str, observer: str) -> bool:
        """Whether `observer` shares a joined room with `observed`."""
        members = self.hs.stores.members
        mine = set(await members.get_rooms_for_user(observer))
        return not mine.isdisjoint(await members.get_rooms_for_user(observed))

    async def interested_users(self, user_id: str) -> set[str]:
        """The user and everyone sharing a joined room with them: whose presence they see."""
        members = self.hs.stores.members
        rooms = await members.get_rooms_for_user(user_id)
        by_room = await members.get_members_of_rooms(rooms)
        return {u for rows in by_room.values() for u, membership in rows if membership == "join"} | {user_id}

    async def get_states(self, user_ids: Iterable[str], include_unknown: bool = False) -> list[UserPresence]:
        """The current presence of each user (from memory on the writer, else the database);
        users without any are left out, or offline with `include_unknown`."""
        wanted = list(dict.fromkeys(user_ids))
        stored = await self.store.get_presence(u for u in wanted if u not in self._states)
        result = []
        for user_id in wanted:
            state = self._states.get(user_id) or stored.get(user_id)
            if state is None and include_unknown:
                state = UserPresence(user_id)
            if state is not None:
                result.append(state)
        return result

    def freshest(self, states: Iterable[UserPresence]) -> list[UserPresence]:
        """Replace stored states by the writer's newer in-memory ones (timestamps move in
        memory between writes)."""
        return [self._states.get(s.user_id, s) for s in states]

    # --- the state machine ----------------------------------------------------------------------------

    def _sync_affects_presence(self, user_id: str, set_presence: str) -> bool:
        if not self.tracking or set_presence == OFFLINE:
            return False
        return self._sync_rate_allows(user_id)

    def _sync_rate_allows(self, user_id: str) -> bool:
        try:
            # Its own bucket: a sync never uses up the user's next presence update.
            self.hs.ratelimiter("rc_presence.per_user").check(f"sync {user_id}")
        except LimitExceeded:
            return False
        return True

    async def _safe_update(self, user_id: str, change: Callable[[UserPresence, int], UserPresence]) -> None:
        """`_update` for side effects of other requests: a failure is logged, not raised."""
        try:
            await self._update(user_id, change)
        except Exception:
            logger.exception("Failed to update the presence of %s", user_id)

    async def _update(self, user_id: str, change: Callable[[UserPresence, int], UserPresence]) -> None:
        """Apply `change` to the user's presence, one change per user at a time; store and
        announce it when others should hear about it."""
        async with self._linearizer.queue(user_id):
            prev = self._states.get(user_id)
            if prev is None:
                [prev] = await self.get_states([user_id], include_unknown=True)
            now = now_ms()
            new = self._with_activity(change(prev, now), now)
            notify = self._should_notify(prev, new)
            if notify:
                [new] = await self.store.update_presence([new])
                self._unpersisted.discard(user_id)
            elif new != prev:
                self._unpersisted.add(user_id)
            if new.state == OFFLINE and user_id not in self._unpersisted:
                self._states.pop(user_id, None)
            else:
                self._states[user_id] = new
            self._schedule(new, now)
        if notify:
            rooms = await self.hs.stores.members.get_rooms_for_user(user_id)
            self.hs.notifier.wake(users=[user_id], rooms=rooms)

    def _with_activity(self, state: UserPresence, now: int) -> UserPresence:
        active = state.state == ONLINE and now - state.last_active_ts < self.config.last_active_granularity_ms
        return state.copy_and_replace(currently_active=active)

    def _should_notify(self, old: UserPresence, new: UserPresence) -> bool:
        """Whether a change is worth telling others (the rules Synapse follows)."""
        if old.state != new.state or old.status_msg != new.status_msg:
            return True
        jumped = new.last_active_ts - old.last_active_ts > self.config.last_active_granularity_ms
        if old.state == ONLINE:
            return new.currently_active != old.currently_active or (jumped and not new.currently_active)
        return jumped

    def _schedule(self, state: UserPresence, now: int) -> None:
        """Put the user on the wheel at each moment their presence may change by itself."""
        if state.state == OFFLINE:
            return
        config = self.config
        due = [max(state.last_user_sync_ts, state.last_active_ts) + config.sync_online_timeout_ms]
        if state.state == ONLINE:
            due.append(state.last_active_ts + config.idle_timeout_ms)
            if state.currently_active:
                due.append(state.last_active_ts + config.last_active_granularity_ms)
        for when in due:
            self._timers.insert(state.user_id, max(when, now + self._check_ms))

    def _timed_out(self, state: UserPresence, now: int) -> UserPresence:
        config = self.config
        if state.state == ONLINE and now - state.last_active_ts > config.idle_timeout_ms:
            state = state.copy_and_replace(state=UNAVAILABLE)
        last_seen = max(state.last_user_sync_ts, state.last_active_ts)
        if state.state != OFFLINE and not self._is_syncing(state.user_id) and now - last_seen > config.sync_online_timeout_ms:
            state = state.copy_and_replace(state=OFFLINE)
        return state

    async def _handle_timeouts(self) -> None:
        self._forget_silent_instances()
        for user_id in sorted(self._timers.fetch(now_ms())):
            if user_id in self._states:
                await self._safe_update(user_id, self._timed_out)

    def _run_timeouts(self) -> "defer.Deferred[None]":
        return defer.ensureDeferred(self._handle_timeouts())

    async def _persist_unpersisted(self) -> None:
        users, self._unpersisted = self._unpersisted, set()
        states = [self._states[u] for u in sorted(users) if u in self._states]
        try:
            await self.store.update_timestamps(states)
        except Exception:
            logger.exception("Failed to store the presence timestamps of %d users", len(states))
            self._unpersisted |= users
            return
        for state in states:
            if state.state == OFFLINE and state.user_id not in self._unpersisted:
                self._states.pop(state.user_id, None)

    def _run_persist(self) -> "defer.Deferred[None]":
        return defer.ensureDeferred(self._persist_unpersisted())


def _synced(prev: UserPresence, now: int, set_presence: str) -> UserPresence:
    new = prev.copy_and_replace(state=set_presence, last_user_sync_ts=now)
    return new.copy_and_replace(last_active_ts=now) if set_presence == ONLINE else new


def _presence_allowed(event_filter: EventFilter, sender: str) -> bool:
    if not type_allowed(event_filter, "m.presence"):
        return False
    if event_filter.senders is not None and sender not in event_filter.senders:
        return False
    return sender not in event_filter.not_senders


class PresenceSyncSource:
    """Adds `presence.events`: on an initial sync, everyone the user sees who is not offline
    (`include_offline_users_on_sync` adds the rest); otherwise whose presence changed since
    the token, plus the members of rooms joined since then and members who joined."""

    key = "presence"

    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.config = hs.config.presence

    def current_position(self) -> int:
        return self.hs.stores.presence_ids.get_current_token()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        if not self.config.enabled:
            return False
        since = context.since_position(self.key)
        if since is None or context.full_state:
            handler = self.hs.presence_handler
            states = await handler.get_states(sorted(await handler.interested_users(context.user_id)))
            states = [s for s in states if s.state != OFFLINE or self.config.include_offline_users_on_sync]
        else:
            states = await self._changes(context, since, response)
        now = now_ms()
        events = [
            {"type": "m.presence", "sender": s.user_id, "content": format_presence(s, now)}
            for s in states if _presence_allowed(context.sync_filter.presence, s.user_id)
        ]
        response["presence"]["events"] = events
        return bool(events)

    async def _changes(self, context: SyncContext, since: int, response: dict[str, Any]) -> list[UserPresence]:
        handler = self.hs.presence_handler
        upto = context.now.presence
        changed = await self.hs.stores.presence.get_presence_since(since, upto) if since < upto else []
        newcomers = await self._newcomers(context, response)
        if not changed and not newcomers:
            return []
        interested = await handler.interested_users(context.user_id)
        states = {s.user_id: s for s in handler.freshest(changed) if s.user_id in interested}
        extra = sorted(newcomers - states.keys())
        states.update((s.user_id, s) for s in await handler.get_states(extra) if s.state != OFFLINE)
        return [states[u] for u in sorted(states)]

    async def _newcomers(self, context: SyncContext, response: dict[str, Any]) -> set[str]:
        """Members of the rooms joined since the token, and users who joined one of the
        user's rooms in this response's timelines: their presence is new to the user."""
        users: set[str] = set()
        if context.newly_joined_room_ids:
            by_room = await self.hs.stores.members.get_members_of_rooms(sorted(context.newly_joined_room_ids))
            users |= {u for rows in by_room.values() for u, membership in rows if membership == "join"}
        for room in response["rooms"]["join"].values():
            for event in room["timeline"]["events"]:
                if event.get("type") == "m.room.member" and event.get("content", {}).get("membership") == "join":
                    users.add(event.get("state_key"))
        users.discard(context.user_id)
        return users
