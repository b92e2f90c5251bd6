"""Test rooms as event graphs: real signed events, the state after each, and forks.

`RoomDag` creates events with the real builder, citing as auth events the entries that
the auth rules need from the state before the event. The state before an event with
several prev events is their resolution by `homeserver.state.resolve_state`, so graphs can
fork and merge freely. Events are not auth-checked when created: a test can put events that
its branch would reject into the graph, and mark events rejected by hand.
"""

import asyncio
import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from signedjson.key import generate_signing_key

from homeserver.events.builder import auth_types_for_event, create_local_event
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.state import StateKey, resolve_state

SERVER = "test.local"
ALICE = f"@alice:{SERVER}"
BOB = f"@bob:{SERVER}"
CAROL = f"@carol:{SERVER}"
DAVE = f"@dave:{SERVER}"
EVE = f"@eve:{SERVER}"

CREATE = ("m.room.create", "")
POWER = ("m.room.power_levels", "")
JOIN_RULES = ("m.room.join_rules", "")
TOPIC = ("m.room.topic", "")
NAME = ("m.room.name", "")


def member(user: str) -> StateKey:
    return ("m.room.member", user)


class RoomDag:
    """One room: its events, the state after each, and helpers to grow branches."""

    def __init__(self, version: str = "10") -> None:
        self.room_version: RoomVersion = KNOWN_ROOM_VERSIONS[version]
        self.room_id = f"!room:{SERVER}"
        self.key = generate_signing_key("x")
        self.events: dict[str, Event] = {}
        self.state_after: dict[str, dict[StateKey, str]] = {}
        self.fetched: list[set[str]] = []
        self._clock = itertools.count(1_000_000, 1000)

    # -- fetching, as a store would -----------------------------------------------------

    async def fetch(self, event_ids: Collection[str]) -> dict[str, Event]:
        """The `fetch_events` callback: every event of the room, by id; records each call."""
        self.fetched.append(set(event_ids))
        return {e: self.events[e] for e in event_ids if e in self.events}

    def resolve(self, states: Sequence[Mapping[StateKey, str]]) -> dict[StateKey, str]:
        """Resolve with an empty event map, so that every event goes through `fetch`."""
        return asyncio.run(resolve_state(self.room_version, states, {}, self.fetch))

    def resolve_tips(self, *tips: str) -> dict[StateKey, str]:
        return self.resolve([self.state_after[t] for t in tips])

    def state_before(self, prev: Sequence[str]) -> dict[StateKey, str]:
        if not prev:
            return {}
        if len(prev) == 1:
            return dict(self.state_after[prev[0]])
        return self.resolve_tips(*prev)

    # -- building events ------------------------------------------------------------------

    def send(
        self,
        prev: str | Sequence[str] | None,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        ts: int | None = None,
    ) -> str:
        """Create an event after `prev` (one id, several, or None for the first one)."""
        prev_ids = [prev] if isinstance(prev, str) else list(prev or [])
        state = self.state_before(prev_ids)
        wanted = auth_types_for_event(self.room_version, event_type, sender, state_key, content)
        auth_ids = [state[k] for k in wanted if k in state]
        depth = max((self.events[p].depth for p in prev_ids), default=0) + 1
        event_dict: dict[str, Any] = {
            "type": event_type, "room_id": self.room_id, "sender": sender, "content": content,
        }
        if state_key is not None:
            event_dict["state_key"] = state_key
        event = create_local_event(
            self.room_version, event_dict, prev_ids, auth_ids, depth, SERVER, self.key,
            origin_server_ts=next(self._clock) if ts is None else ts,
        )
        self.events[event.event_id] = event
        after = dict(state)
        if state_key is not None:
            after[(event_type, state_key)] = event.event_id
        self.state_after[event.event_id] = after
        return event.event_id

    def state(
        self, prev: str | Sequence[str], sender: str, event_type: str, content: dict[str, Any],
        state_key: str = "", ts: int | None = None,
    ) -> str:
        return self.send(prev, sender, event_type, content, state_key, ts)

    def join(self, prev: str | Sequence[str], user: str, ts: int | None = None) -> str:
        return self.state(prev, user, "m.room.member", {"membership": "join"}, user, ts)

    def membership(
        self, prev: str | Sequence[str], sender: str, target: str, membership: str,
        ts: int | None = None,
    ) -> str:
        return self.state(prev, sender, "m.room.member", {"membership": membership}, target, ts)

    def power_levels(
        self, prev: str | Sequence[str], sender: str, users: dict[str, int],
        ts: int | None = None, **levels: Any,
    ) -> str:
        return self.state(prev, sender, "m.room.power_levels", {"users": users, **levels}, ts=ts)

    def topic(self, prev: str | Sequence[str], sender: str, text: str, ts: int | None = None) -> str:
        return self.state(prev, sender, "m.room.topic", {"topic": text}, ts=ts)

    def join_rule(
        self, prev: str | Sequence[str], sender: str, rule: str, ts: int | None = None
    ) -> str:
        return self.state(prev, sender, "m.room.join_rules", {"join_rule": rule}, ts=ts)

    def message(self, prev: str | Sequence[str], sender: str, body: str = "hi") -> str:
        return self.send(prev, sender, "m.room.message", {"msgtype": "m.text", "body": body})

    def create_room(self, members: Sequence[str] = (BOB, CAROL), users: dict[str, int] | None = None) -> str:
        """Alice creates a public room; `members` join; returns the last event id.

        `users` are the power levels of the first power levels event (Alice 100 by default).
        """
        content: dict[str, Any] = {"room_version": self.room_version.identifier}
        if not self.room_version.implicit_room_creator:
            content["creator"] = ALICE
        tip = self.send(None, ALICE, "m.room.create", content, "")
        tip = self.join(tip, ALICE)
        tip = self.power_levels(tip, ALICE, users or {ALICE: 100})
        tip = self.join_rule(tip, ALICE, "public")
        for user in members:
            tip = self.join(tip, user)
        return tip

    def describe(self, state: Mapping[StateKey, str]) -> dict[StateKey, str]:
        """State with event ids replaced by `sender type content` summaries, for messages."""
        return {k: f"{self.events[v].sender} {self.events[v].content}" for k, v in state.items()}
