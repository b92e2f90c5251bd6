"""Notifications: evaluating push rules for newly persisted events, unread notification
counts in `/sync`, and the `/notifications` list.

`PushActionsProcessor` runs on the process that persists events (an `on_persisted` callback):
per batch of events it loads the rooms' joined members, the rulesets of the local ones (from
the push rules cache), the power levels at each event and the thread each event belongs to,
evaluates, and stores the notifying outcomes in one insert — a fixed number of queries per
batch. Until a batch is stored, the process's sync token does not pass its events (the unread
counts source holds the `events` position back), so a count always arrives in the same
`/sync` response as the event that caused it.
"""

import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from homeserver.events.event import Event
from homeserver.events.serialize import serialize_event
from homeserver.handlers.push_evaluator import EventEvaluator, RoomFacts
from homeserver.handlers.sync_sources import SyncContext, ensure_joined_room
from homeserver.http.errors import invalid_param
from homeserver.storage.stores.event_push_actions import PushActionRow, UnreadCount
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

logger = logging.getLogger(__name__)

MAIN_THREAD = "main"
# How many relations to follow from an event to find its thread (the spec suggests 3).
MAX_THREAD_HOPS = 3
DEFAULT_NOTIFICATIONS_LIMIT = 50
MAX_NOTIFICATIONS_LIMIT = 1000


def _relation(event: Event) -> tuple[str, str] | None:
    """(rel_type, parent event id) of the event's `m.relates_to`, if it has a valid one."""
    relation = event.content.get("m.relates_to")
    if not isinstance(relation, dict):
        return None
    rel_type, parent = relation.get("rel_type"), relation.get("event_id")
    if isinstance(rel_type, str) and isinstance(parent, str):
        return rel_type, parent
    return None


class PushActionsProcessor:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stores = hs.stores
        # Lowest stream ordering of each batch still being evaluated.
        self._in_flight: list[int] = []
        # First in line, so the notifier wakes syncs only once the counts are stored.
        hs.events_persister.on_persisted.insert(0, self.on_persisted)

    def position(self) -> int:
        """The events position up to which every event this process persisted is evaluated."""
        current = self.stores.event_ids.get_current_token()
        if not self._in_flight:
            return current
        return min(current, min(self._in_flight) - 1)

    def on_persisted(self, events: list[Event]) -> "defer.Deferred[None]":
        orderings = [e.internal_metadata.get("stream_ordering", 0) for e in events]
        floor = min(orderings) if orderings else 0
        self._in_flight.append(floor)
        return defer.ensureDeferred(self._process(events, floor))

    async def _process(self, events: list[Event], floor: int) -> None:
        try:
            await self.evaluate_batch(events)
        except Exception:
            logger.exception("Push rule evaluation failed for %d events", len(events))
        finally:
            self._in_flight.remove(floor)

    async def evaluate_batch(self, events: list[Event]) -> None:
        events = [e for e in events if e.rejected_reason is None]
        if not events:
            return
        room_ids = sorted({e.room_id for e in events})
        members = await self.stores.members.get_joined_members_with_display_names(room_ids)
        targets = {e.event_id: self._recipients(e, members.get(e.room_id, {})) for e in events}
        events = [e for e in events if targets[e.event_id]]
        if not events:
            return
        users = sorted({user for recipients in targets.values() for user in recipients})
        rulesets = await self.hs.push_rules_handler.get_rules_for_users(users)
        facts = await self._room_facts(events, members)
        threads = await self._thread_ids(events)
        received = now_ms()
        rows = []
        for event in events:
            evaluator = EventEvaluator(event, facts[event.event_id])
            for user_id, display_name in targets[event.event_id].items():
                outcome = evaluator.run(rulesets[user_id], user_id, display_name)
                if outcome is not None and (outcome.notify or outcome.highlight):
                    rows.append(PushActionRow(
                        user_id, event.room_id, event.event_id, event.internal_metadata["stream_ordering"],
                        outcome.actions, outcome.notify, outcome.highlight, threads[event.event_id], received,
                    ))
        await self.stores.event_push_actions.add_push_actions(rows)

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self.hs.hostname)

    def _recipients(self, event: Event, joined: dict[str, str | None]) -> dict[str, str | None]:
        """Local users to evaluate the event for, with their display name in the room:
        joined members other than the sender, and the target of an invite."""
        result = {u: name for u, name in joined.items() if u != event.sender and self._is_local(u)}
        target = event.state_key
        if event.type == "m.room.member" and event.membership == "invite" and target and target != event.sender:
            if self._is_local(target):
                name = event.content.get("displayname")
                result[target] = name if isinstance(name, str) else None
        return result

    async def _room_facts(self, events: list[Event], members: dict[str, dict[str, str | None]]) -> dict[str, RoomFacts]:
        """Member count and power levels for each event (power levels from its auth events)."""
        auth = await self.stores.events.get_events(a for e in events for a in e.auth_event_ids())
        result = {}
        for event in events:
            power_levels: dict[str, Any] | None = None
            creator = None
            for auth_id in event.auth_event_ids():
                auth_event = auth.get(auth_id)
                if auth_event is None:
                    continue
                if auth_event.type == "m.room.power_levels":
                    power_levels = auth_event.content
                elif auth_event.type == "m.room.create":
                    value = auth_event.content.get("creator")
                    creator = value if isinstance(value, str) else auth_event.sender
            result[event.event_id] = RoomFacts(len(members.get(event.room_id, {})), power_levels, creator)
        return result

    async def _thread_ids(self, events: list[Event]) -> dict[str, str]:
        """The thread root each event belongs to, following up to MAX_THREAD_HOPS relations
        (a reaction to a threaded reply is in that thread), or 'main'."""
        known = {e.event_id: e for e in events}
        result: dict[str, str] = {}
        pending: dict[str, str] = {}  # event id -> the related event to look at next
        for event in events:
            relation = _relation(event)
            if relation is None:
                result[event.event_id] = MAIN_THREAD
            elif relation[0] == "m.thread":
                result[event.event_id] = relation[1]
            else:
                pending[event.event_id] = relation[1]
        for _ in range(MAX_THREAD_HOPS - 1):
            if not pending:
                break
            missing = [p for p in pending.values() if p not in known]
            known.update(await self.stores.events.get_events(missing))
            next_pending: dict[str, str] = {}
            for event_id, parent_id in pending.items():
                parent = known.get(parent_id)
                relation = _relation(parent) if parent is not None else None
                if relation is None:
                    result[event_id] = MAIN_THREAD
                elif relation[0] == "m.thread":
                    result[event_id] = relation[1]
                else:
                    next_pending[event_id] = relation[1]
            pending = next_pending
        for event_id in pending:
            result[event_id] = MAIN_THREAD
        return result


class NotificationsHandler:
    """Reads: unread counts per room and thread, and the `/notifications` list."""

    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stores = hs.stores

    async def read_positions(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """Per room, the stream position up to which the user has read: their read receipt,
        but never before their current stay in the room began (an invite, or notifications
        from before they left, do not count once they join)."""
        receipts = await self.stores.receipts.get_last_read_stream_orderings(user_id, room_ids)
        arrived = await self.stores.members.get_last_non_join_orderings(user_id, room_ids)
        return {r: max(receipts.get(r, 0), arrived.get(r, 0)) for r in room_ids}

    async def unread_counts(self, user_id: str, room_ids: list[str], upto: int) -> list[UnreadCount]:
        if not room_ids:
            return []
        positions = await self.read_positions(user_id, room_ids)
        return await self.stores.event_push_actions.get_unread_counts(user_id, positions, upto)

    async def get_notifications(self, user_id: str, from_token: str | None, limit: int | None, only: str | None) -> dict[str, Any]:
        before = None
        if from_token is not None:
            if not (from_token.isascii() and from_token.isdigit()) or int(from_token) >= 2**63:
                raise invalid_param("Invalid 'from' token")
            before = int(from_token)
        limit = min(DEFAULT_NOTIFICATIONS_LIMIT if limit is None else limit, MAX_NOTIFICATIONS_LIMIT)
        rows = await self.stores.event_push_actions.get_notifications(user_id, before, limit + 1, only == "highlight")
        more, rows = len(rows) > limit, rows[:limit]
        events = await self.stores.events.get_events(r.event_id for r in rows)
        read = await self.stores.receipts.get_last_read_stream_orderings(user_id, sorted({r.room_id for r in rows}))
        now = now_ms()
        notifications = [
            {
                "actions": row.actions,
                "event": serialize_event(events[row.event_id], now, include_room_id=False),
                "read": read.get(row.room_id, 0) >= row.stream_ordering,
                "room_id": row.room_id,
                "ts": row.received_ts,
            }
            for row in rows if row.event_id in events
        ]
        body: dict[str, Any] = {"notifications": notifications}
        if more and rows:
            body["next_token"] = str(rows[-1].stream_ordering)
        return body


def _counts(count: UnreadCount | None) -> dict[str, int]:
    if count is None:
        return {"notification_count": 0, "highlight_count": 0}
    return {"notification_count": count.notifications, "highlight_count": count.highlights}


class UnreadCountsSyncSource:
    """Adds `unread_notifications` (and, when the filter asks, `unread_thread_notifications`)
    to every joined room in the response, and to rooms whose read position moved.

    Its `events` position is how far push actions are stored (see `PushActionsProcessor`),
    which keeps events out of a sync until their counts are ready."""

    key = "events"

    def __init__(self, hs: "HomeServer"):
        self.hs = hs

    def current_position(self) -> int:
        return self.hs.push_actions_processor.position()

    async def add_to_sync(self, context: SyncContext, response: dict[str, Any]) -> bool:
        joined = response["rooms"]["join"]
        room_ids = list(joined)
        added = [r for r in await self._rooms_read_since(context) if r not in joined]
        room_ids += added
        counts = await self.hs.notifications_handler.unread_counts(context.user_id, room_ids, context.now.events)
        by_thread: dict[str, dict[str, UnreadCount]] = {}
        for count in counts:
            by_thread.setdefault(count.room_id, {})[count.thread_id] = count
        threaded = context.sync_filter.timeline.unread_thread_notifications
        for room_id in room_ids:
            room = ensure_joined_room(response, room_id)
            threads = by_thread.get(room_id, {})
            if threaded:
                room["unread_notifications"] = _counts(threads.get(MAIN_THREAD))
                room["unread_thread_notifications"] = {
                    t: _counts(c) for t, c in threads.items() if t != MAIN_THREAD and (c.notifications or c.highlights)
                }
            else:
                room["unread_notifications"] = {
                    "notification_count": sum(c.notifications for c in threads.values()),
                    "highlight_count": sum(c.highlights for c in threads.values()),
                }
        return bool(added)

    async def _rooms_read_since(self, context: SyncContext) -> list[str]:
        """Joined rooms where the user's read receipt moved since the token."""
        since = context.since_position("receipts")
        if since is None or not self.hs.stores.receipts_ids.changes.has_entity_changed(context.user_id, since):
            return []
        changed = await self.hs.stores.receipts.get_rooms_with_own_receipts_between(
            context.user_id, since, context.now.receipts
        )
        joined = set(context.joined_room_ids)
        return [r for r in changed if r in joined and context.sync_filter.allows_room(r)]
