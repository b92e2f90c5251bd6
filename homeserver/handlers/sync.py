"""`/sync`: what changed for a user between two stream tokens, computed with set-based
queries per stream, and long-polling through the notifier when nothing did."""

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeserver.events.event import Event
from homeserver.events.serialize import serialize_event
from homeserver.handlers.filtering import SyncFilter
from homeserver.handlers.room_read import encode_token
from homeserver.handlers.sync_sources import SyncContext
from homeserver.http.auth import Requester
from homeserver.storage.stores.events import TopologicalPosition
from homeserver.tokens import StreamToken
from homeserver.util.clock import now_ms

if TYPE_CHECKING:
    from homeserver.server import HomeServer

StateKey = tuple[str, str]
STRIPPED_STATE_TYPES = (
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias",
    "m.room.encryption", "m.room.topic",
)
MAX_HEROES = 5
# How long a sync waits for this process to catch up with a token issued elsewhere.
CATCH_UP_SECONDS = 10
logger = logging.getLogger(__name__)


@dataclass
class RoomPlan:
    """What to compute for one room of the response."""

    room_id: str
    section: str  # join, leave
    full: bool  # full state (initial sync, newly joined, full_state) or only changes
    after: int | None  # timeline lower bound (exclusive); None = from the start of history
    upto: int  # timeline upper bound (inclusive)
    event_ids: list[str] = field(default_factory=list)
    limited: bool = False


class SyncHandler:
    def __init__(self, hs: "HomeServer"):
        self.hs = hs
        self.stores = hs.stores

    def current_token(self) -> StreamToken:
        token = StreamToken(events=self.stores.event_ids.get_current_token())
        for source in self.hs.sync_sources:
            token = token.copy_and_replace(source.key, source.current_position())
        return token

    async def sync(
        self, requester: Requester, since_token: str | None, timeout_ms: int, full_state: bool, filter_value: str | None,
    ) -> dict[str, Any]:
        sync_filter = await self.hs.filter_handler.resolve(requester.user_id, filter_value)
        since = StreamToken.parse(since_token) if since_token else None
        if since is not None:
            await self._wait_to_reach(since)
        if since is None or timeout_ms == 0:
            # Not waiting for news: include events just written through another process.
            await self.hs.replication.wait_for_database()
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            now_token = self.current_token() if since is None else self.current_token().max_with(since)
            response, has_data, rooms = await self._build(requester, since, now_token, full_state, sync_filter)
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if since is None or full_state or has_data or remaining_ms <= 0:
                return response
            # Woken without news for this user (or before the token moved): wait on.
            await self.hs.notifier.wait_for_change(requester.user_id, rooms, now_token, remaining_ms)

    async def _wait_to_reach(self, since: StreamToken) -> None:
        """A token issued by a process that was further along (another worker, or before this
        one restarted) is honoured once this process has caught up with it; bounded, so a
        token from nowhere cannot hang the request."""
        from twisted.internet import reactor, task

        deadline = time.monotonic() + CATCH_UP_SECONDS
        while since.is_after(self.current_token()) and time.monotonic() < deadline:
            await task.deferLater(reactor, 0.05, lambda: None)
        if since.is_after(self.current_token()):
            logger.warning("Sync token %s is ahead of this process (%s)", since.encode(), self.current_token().encode())

    async def _build(
        self, requester: Requester, since: StreamToken | None, now: StreamToken, full_state: bool, sync_filter: SyncFilter,
    ) -> tuple[dict[str, Any], bool, list[str]]:
        user_id = requester.user_id
        since_pos = None if since is None else min(since.events, now.events)
        memberships = await self.stores.members.get_memberships_for_user(user_id)
        plans: list[RoomPlan] = []
        invites: list[tuple[str, str, str]] = []
        joined_rooms = []
        member_changed: list[str] = []  # joined, with a membership event of theirs since the token
        for room_id, membership, event_id, ordering in memberships:
            if ordering > now.events or not sync_filter.allows_room(room_id):
                continue
            changed = since_pos is None or ordering > since_pos
            if membership == "join":
                joined_rooms.append(room_id)
                if since_pos is None or full_state:
                    plans.append(RoomPlan(room_id, "join", True, None, now.events))
                elif changed:
                    member_changed.append(room_id)
                elif self.hs.notifier.room_changes.has_entity_changed(room_id, since_pos):
                    plans.append(RoomPlan(room_id, "join", False, since_pos, now.events))
            elif membership in ("invite", "knock") and changed:
                invites.append((room_id, membership, event_id))
            elif membership in ("leave", "ban"):
                if since_pos is not None and changed:
                    plans.append(RoomPlan(room_id, "leave", full_state, since_pos, ordering))
                elif since_pos is None and sync_filter.include_leave:
                    plans.append(RoomPlan(room_id, "leave", True, None, ordering))
        if member_changed and since_pos is not None:
            # Only a room the user was not joined to at the token (or left since) is newly
            # joined; a join replacing a join (a profile change) is an ordinary update.
            stayed = await self.stores.members.get_rooms_joined_throughout(user_id, member_changed, since_pos, now.events)
            for room_id in member_changed:
                kept = room_id in stayed
                plans.append(RoomPlan(room_id, "join", not kept, since_pos if kept else None, now.events))
        await self._fill_timelines(plans, sync_filter.timeline_limit)
        rooms = await self._rooms_response(requester, plans, sync_filter, since_pos)
        rooms["invite"], rooms["knock"] = await self._invites_response(invites)
        has_data = any(rooms[section] for section in ("invite", "knock", "leave")) or any(
            r["timeline"]["events"] or r["state"]["events"] for r in rooms["join"].values()
        )
        response: dict[str, Any] = {
            "next_batch": now.encode(),
            "rooms": rooms,
            "presence": {"events": []},
            "account_data": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {},
            "device_unused_fallback_key_types": [],
        }
        context = SyncContext(
            requester, since, now, sync_filter, full_state, joined_rooms,
            {p.room_id for p in plans if p.section == "join" and p.full and since is not None},
        )
        for source in self.hs.sync_sources:
            if await source.add_to_sync(context, response):
                has_data = True
        return response, has_data, joined_rooms

    async def _fill_timelines(self, plans: list[RoomPlan], limit: int) -> None:
        """Event ids of each room's timeline, with one query per group of rooms sharing bounds."""
        groups: dict[tuple[int | None, int], list[RoomPlan]] = {}
        for plan in plans:
            groups.setdefault((plan.after, plan.upto), []).append(plan)
        timeline = self.stores.timeline
        for (after, upto), members in groups.items():
            found = await timeline.get_recent_event_ids([p.room_id for p in members], after, upto, limit + 1)
            for plan in members:
                ids = found.get(plan.room_id, [])
                plan.limited = len(ids) > limit
                plan.event_ids = ids[-limit:] if limit else []

    async def _rooms_response(
        self, requester: Requester, plans: list[RoomPlan], sync_filter: SyncFilter, since_pos: int | None,
    ) -> dict[str, Any]:
        user_id = requester.user_id
        events_store = self.stores.events
        all_ids = [i for plan in plans for i in plan.event_ids]
        fetched = await events_store.get_events(all_ids)
        visible = {e.event_id for e in await self.hs.visibility_handler.filter_events_for_user(
            user_id, [fetched[i] for i in all_ids if i in fetched])}
        txn_ids = await self.stores.timeline.get_transaction_ids(
            user_id, requester.device_id or requester.access_token, [i for i in all_ids if i in fetched and fetched[i].sender == user_id]
        )
        timelines = {
            plan.room_id: [fetched[i] for i in plan.event_ids if i in visible and sync_filter.timeline.allows(fetched[i])]
            for plan in plans
        }
        states = await self._state_sections(plans, timelines, sync_filter, since_pos, user_id)
        summaries = await self._summaries([p.room_id for p in plans if p.section == "join"], user_id)
        now = now_ms()
        bundles = await self.hs.relations_handler.get_bundles(user_id, [e for t in timelines.values() for e in t], now)
        result: dict[str, Any] = {"join": {}, "leave": {}}
        for plan in plans:
            timeline = timelines[plan.room_id]
            prev_batch = encode_token(_position(timeline[0])) if timeline else f"s{plan.upto}"
            room: dict[str, Any] = {
                "timeline": {
                    "events": [self._serialize(e, now, txn_ids, sync_filter, bundles) for e in timeline],
                    "limited": plan.limited,
                    "prev_batch": prev_batch,
                },
                "state": {"events": [self._serialize(e, now, {}, sync_filter) for e in states[plan.room_id]]},
                "account_data": {"events": []},
            }
            if plan.section == "join":
                room["ephemeral"] = {"events": []}
                room["summary"] = summaries.get(plan.room_id, {})
            result[plan.section][plan.room_id] = room
        return result

    def _serialize(
        self, event: Event, now: int, txn_ids: dict[str, str], sync_filter: SyncFilter,
        bundles: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        body = serialize_event(event, now, as_client=sync_filter.event_format == "client", include_room_id=False)
        if event.event_id in txn_ids:
            body["unsigned"]["transaction_id"] = txn_ids[event.event_id]
        if bundles and event.event_id in bundles:
            body["unsigned"]["m.relations"] = bundles[event.event_id]
        if sync_filter.event_fields is not None:
            body = _only_fields(body, sync_filter.event_fields)
        return body

    async def _state_sections(
        self, plans: list[RoomPlan], timelines: dict[str, list[Event]], sync_filter: SyncFilter,
        since_pos: int | None, user_id: str,
    ) -> dict[str, list[Event]]:
        """Per room: the state to send before the timeline (all of it, or what changed)."""
        state_store = self.stores.state
        anchors = {p.room_id: timelines[p.room_id][0].event_id for p in plans if timelines[p.room_id]}
        after_first = await state_store.get_state_after_events(anchors.values())
        need_since = [p.room_id for p in plans if not p.full and p.limited and since_pos is not None]
        since_events = await self.stores.timeline.get_last_event_ids_at(need_since, since_pos or 0)
        since_states = await state_store.get_state_after_events(since_events.values())
        wanted: dict[str, dict[StateKey, str]] = {}
        for plan in plans:
            timeline = timelines[plan.room_id]
            if timeline:
                before = _state_before(timeline[0], after_first.get(timeline[0].event_id, {}))
            else:
                before = await self._state_at_end(plan)
            if plan.full:
                chosen = dict(before)
            elif plan.limited and plan.room_id in since_events:
                old = since_states.get(since_events[plan.room_id], {})
                chosen = {k: v for k, v in before.items() if old.get(k) != v}
            else:
                chosen = {}
            if sync_filter.state.lazy_load_members:
                senders = {e.sender for e in timeline} | {user_id}
                chosen = {k: v for k, v in chosen.items() if k[0] != "m.room.member" or k[1] in senders}
                for sender in senders:
                    if ("m.room.member", sender) in before:
                        chosen.setdefault(("m.room.member", sender), before[("m.room.member", sender)])
            wanted[plan.room_id] = chosen
        events = await self.stores.events.get_events(i for chosen in wanted.values() for i in chosen.values())
        return {
            room_id: [events[i] for i in sorted(chosen.values()) if i in events and sync_filter.state.allows(events[i])]
            for room_id, chosen in wanted.items()
        }

    async def _state_at_end(self, plan: RoomPlan) -> dict[StateKey, str]:
        if plan.section == "join":
            return await self.stores.state.get_current_state_ids(plan.room_id)
        last = await self.stores.timeline.get_last_event_ids_at([plan.room_id], plan.upto)
        states = await self.stores.state.get_state_after_events(last.values())
        return dict(states.get(last.get(plan.room_id, ""), {}))

    async def _summaries(self, room_ids: list[str], user_id: str) -> dict[str, dict[str, Any]]:
        members = await self.stores.members.get_members_of_rooms(room_ids)
        result = {}
        for room_id, rows in members.items():
            joined = [u for u, m in rows if m == "join"]
            invited = [u for u, m in rows if m == "invite"]
            heroes = [u for u in joined + invited if u != user_id][:MAX_HEROES]
            result[room_id] = {"m.heroes": heroes, "m.joined_member_count": len(joined), "m.invited_member_count": len(invited)}
        return result

    async def _invites_response(self, invites: list[tuple[str, str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Stripped state for rooms the user is invited to or knocked on."""
        if not invites:
            return {}, {}
        state_store = self.stores.state
        states = await state_store.get_state_after_events(event_id for _, _, event_id in invites)
        ids = [event_id for _, _, event_id in invites]
        for _, _, event_id in invites:
            ids += [e for (t, _), e in states.get(event_id, {}).items() if t in STRIPPED_STATE_TYPES]
        events = await self.stores.events.get_events(ids)
        invite_rooms: dict[str, Any] = {}
        knock_rooms: dict[str, Any] = {}
        for room_id, membership, event_id in invites:
            state_ids = [e for (t, _), e in states.get(event_id, {}).items() if t in STRIPPED_STATE_TYPES] + [event_id]
            stripped = [_stripped(events[e]) for e in state_ids if e in events]
            if membership == "invite":
                invite_rooms[room_id] = {"invite_state": {"events": stripped}}
            else:
                knock_rooms[room_id] = {"knock_state": {"events": stripped}}
        return invite_rooms, knock_rooms


def _state_before(first: Event, state_after_first: Any) -> dict[StateKey, str]:
    before = dict(state_after_first)
    if first.is_state() and before.get(first.state_key_tuple) == first.event_id:
        replaced = first.unsigned.get("replaces_state")
        if replaced:
            before[first.state_key_tuple] = replaced
        else:
            del before[first.state_key_tuple]
    return before


def _stripped(event: Event) -> dict[str, Any]:
    return {"type": event.type, "state_key": event.state_key, "content": event.content, "sender": event.sender}


def _position(event: Event) -> TopologicalPosition:
    return TopologicalPosition(event.internal_metadata["topological_ordering"], event.internal_metadata["stream_ordering"])


def _only_fields(body: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for path in wanted:
        parts = path.split(".")
        source: Any = body
        for part in parts:
            if not isinstance(source, dict) or part not in source:
                break
            source = source[part]
        else:
            target = result
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = source
    return result
