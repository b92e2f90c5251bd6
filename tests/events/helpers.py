"""A small in-memory room for event tests: builds signed events with the right auth
events and keeps the resulting state map."""

from typing import Any

from signedjson.key import generate_signing_key

from homeserver.events.auth import check_auth
from homeserver.events.builder import auth_types_for_event, create_local_event
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.events.signing import sign_pdu

CREATOR = "@creator:test"
MOD = "@mod:test"
ALICE = "@alice:test"
BOB = "@bob:test"
REMOTE = "@remote:other"

_KEYS: dict[str, Any] = {}


def key_for(server: str) -> Any:
    """One signing key per server name, generated once per test run."""
    if server not in _KEYS:
        _KEYS[server] = generate_signing_key("k1")
    return _KEYS[server]


def domain(user_id: str) -> str:
    return user_id.split(":", 1)[1]


class Room:
    """A room being built event by event; `state` is its current state map."""

    def __init__(self, version: str, room_id: str = "!room:test") -> None:
        self.rv: RoomVersion = KNOWN_ROOM_VERSIONS[version]
        self.room_id = room_id
        self.state: dict[tuple[str, str], Event] = {}
        self.extremities: list[str] = []
        self.depth = 0
        self.events: list[Event] = []

    def make(
        self,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None = None,
        redacts: str | None = None,
        also_signed_by: tuple[str, ...] = (),
    ) -> Event:
        """A signed event on top of the current state, not yet checked or applied."""
        auth_ids = [
            self.state[key].event_id
            for key in auth_types_for_event(self.rv, event_type, sender, state_key, content)
            if key in self.state
        ]
        event_dict: dict[str, Any] = {
            "type": event_type, "room_id": self.room_id, "sender": sender, "content": content,
        }
        if state_key is not None:
            event_dict["state_key"] = state_key
        if redacts is not None:
            event_dict["redacts"] = redacts
        server = domain(sender)
        event = create_local_event(
            self.rv, event_dict, list(self.extremities), auth_ids, self.depth + 1,
            server, key_for(server), origin_server_ts=1_700_000_000_000 + self.depth,
        )
        for other in also_signed_by:
            pdu = event.get_pdu_json()
            sign_pdu(pdu, other, key_for(other), self.rv)
            event = Event(pdu, self.rv, event_id=event.event_id)
        return event

    def check(self, event: Event) -> None:
        check_auth(self.rv, event, self.state)

    def apply(self, event: Event) -> Event:
        self.events.append(event)
        self.extremities = [event.event_id]
        self.depth = event.depth
        if event.is_state():
            self.state[event.state_key_tuple] = event
        return event

    def send(self, event_type: str, sender: str, content: dict[str, Any],
             state_key: str | None = None, **kwargs: Any) -> Event:
        """Make, authorise (raising AuthError) and apply an event."""
        event = self.make(event_type, sender, content, state_key, **kwargs)
        self.check(event)
        return self.apply(event)

    def member(self, sender: str, target: str, membership: str, **extra: Any) -> Event:
        return self.make("m.room.member", sender, {"membership": membership, **extra}, target)

    def set_member(self, sender: str, target: str, membership: str, **extra: Any) -> Event:
        return self.send("m.room.member", sender, {"membership": membership, **extra}, target)

    def power_levels(self, sender: str = CREATOR, **overrides: Any) -> Event:
        content: dict[str, Any] = {
            "users": {CREATOR: 100, MOD: 50},
            "users_default": 0,
            "events": {"m.room.power_levels": 100, "m.room.name": 50},
            "events_default": 0,
            "state_default": 50,
            "ban": 50,
            "kick": 50,
            "redact": 50,
            "invite": 0,
        }
        content.update(overrides)
        return self.send("m.room.power_levels", sender, content, "")


def create_content(rv: RoomVersion, creator: str = CREATOR, **extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"room_version": rv.identifier, **extra}
    if not rv.implicit_room_creator:
        content["creator"] = creator
    return content


def new_room(version: str, join_rule: str = "public", members: tuple[str, ...] = (MOD,),
             **power_levels: Any) -> Room:
    """A room with create, the creator's join, power levels, `members` joined through
    invites, then the join rule."""
    room = Room(version)
    room.send("m.room.create", CREATOR, create_content(room.rv), "")
    room.set_member(CREATOR, CREATOR, "join")
    room.power_levels(**power_levels)
    for user in members:
        room.set_member(CREATOR, user, "invite")
        room.set_member(user, user, "join")
    room.send("m.room.join_rules", CREATOR, {"join_rule": join_rule}, "")
    return room
