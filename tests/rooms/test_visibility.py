"""History visibility end to end: what /messages, /event, /context and /state show to users
who joined late, were invited, left, or never joined, for each m.room.history_visibility."""

from typing import Any

from tests.harness import Client
from tests.rooms.conftest import UserFactory
from tests.rooms.helpers import (
    bodies,
    create_room,
    get_event,
    get_state,
    invite,
    join,
    leave,
    members,
    messages,
    path_id,
    put_state,
    send,
    timeline,
)
from tests.test_accounts import assert_error


def room_with_visibility(alice: Client, visibility: str, preset: str = "public_chat") -> str:
    return create_room(alice, preset=preset, initial_state=[
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": visibility}},
    ])


def event_status(client: Client, room_id: str, event_id: str) -> int:
    return client.get(f"rooms/{path_id(room_id)}/event/{path_id(event_id)}").status_code


def context_status(client: Client, room_id: str, event_id: str) -> int:
    return client.get(f"rooms/{path_id(room_id)}/context/{path_id(event_id)}").status_code


def test_joined_visibility(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "joined")
    before = send(alice, room_id, "before")
    join(bob, room_id)
    after = send(alice, room_id, "after")
    assert bodies(timeline(bob, room_id)) == ["after"]
    assert bodies(timeline(alice, room_id)) == ["before", "after"]
    assert_error(bob.get(f"rooms/{path_id(room_id)}/event/{path_id(before)}"), 404, "M_NOT_FOUND")
    assert get_event(bob, room_id, after)["content"]["body"] == "after"
    assert context_status(bob, room_id, before) == 404
    assert context_status(bob, room_id, after) == 200
    # bob still sees his own join, and the state events through /state.
    events = timeline(bob, room_id)
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob.user_id for e in events)
    assert get_state(bob, room_id, "m.room.history_visibility") == {"history_visibility": "joined"}
    # Forward pagination hides the same events.
    forward = messages(bob, room_id, dir="f", limit=100)
    assert bodies(forward["chunk"]) == ["after"]


def test_joined_visibility_context_hides_earlier_events(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "joined")
    send(alice, room_id, "hidden")
    join(bob, room_id)
    after = send(alice, room_id, "seen")
    resp = bob.get(f"rooms/{path_id(room_id)}/context/{path_id(after)}", params={"limit": 20})
    assert resp.status_code == 200, resp.text
    assert "hidden" not in bodies(resp.json()["events_before"])


def test_shared_visibility(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "shared")
    before = send(alice, room_id, "before")
    # Not yet a member: nothing to read.
    assert_error(bob.get(f"rooms/{path_id(room_id)}/messages", params={"dir": "b"}), 403, "M_FORBIDDEN")
    join(bob, room_id)
    send(alice, room_id, "after")
    assert bodies(timeline(bob, room_id)) == ["before", "after"]
    assert get_event(bob, room_id, before)["content"]["body"] == "before"
    assert context_status(bob, room_id, before) == 200


def test_invited_visibility(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "invited", preset="private_chat")
    before = send(alice, room_id, "before invite")
    invite(alice, room_id, bob.user_id)
    while_invited = send(alice, room_id, "after invite")
    join(bob, room_id)
    send(alice, room_id, "after join")
    assert bodies(timeline(bob, room_id)) == ["after invite", "after join"]
    assert event_status(bob, room_id, before) == 404
    assert get_event(bob, room_id, while_invited)["content"]["body"] == "after invite"


def test_world_readable_visibility(alice: Client, new_user: UserFactory) -> None:
    outsider = new_user("outsider")
    room_id = room_with_visibility(alice, "world_readable", preset="private_chat")
    put_state(alice, room_id, "m.room.topic", {"topic": "open book"})
    first = send(alice, room_id, "first")
    send(alice, room_id, "second")
    # A user who never joined reads the history, the state and single events...
    assert bodies(timeline(outsider, room_id)) == ["first", "second"]
    assert get_event(outsider, room_id, first)["content"]["body"] == "first"
    assert get_state(outsider, room_id, "m.room.topic") == {"topic": "open book"}
    resp = outsider.get(f"rooms/{path_id(room_id)}/state")
    assert resp.status_code == 200, resp.text
    assert ("m.room.topic", "") in {(e["type"], e["state_key"]) for e in resp.json()}
    assert members(outsider, room_id) == {alice.user_id: "join"}
    assert context_status(outsider, room_id, first) == 200
    # ...but cannot write to it.
    assert_error(outsider.put(f"rooms/{path_id(room_id)}/send/m.room.message/x", {"body": "hi"}), 403, "M_FORBIDDEN")


def test_user_who_left_sees_history_up_to_leaving(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "shared")
    put_state(alice, room_id, "m.room.topic", {"topic": "while bob was here"})
    join(bob, room_id)
    during = send(alice, room_id, "while joined")
    leave(bob, room_id)
    after = send(alice, room_id, "after leaving")
    put_state(alice, room_id, "m.room.topic", {"topic": "after bob left"})

    assert bodies(timeline(bob, room_id)) == ["while joined"]
    assert get_event(bob, room_id, during)["content"]["body"] == "while joined"
    assert_error(bob.get(f"rooms/{path_id(room_id)}/event/{path_id(after)}"), 404, "M_NOT_FOUND")
    assert context_status(bob, room_id, after) == 404
    # State as of the leave.
    assert get_state(bob, room_id, "m.room.topic") == {"topic": "while bob was here"}
    resp = bob.get(f"rooms/{path_id(room_id)}/state")
    assert resp.status_code == 200, resp.text
    topics = [e["content"] for e in resp.json() if e["type"] == "m.room.topic"]
    assert topics == [{"topic": "while bob was here"}]
    assert members(bob, room_id)[bob.user_id] == "leave"
    # The room's current members are not visible to a former member.
    assert_error(bob.get(f"rooms/{path_id(room_id)}/joined_members"), 403, "M_FORBIDDEN")


def test_user_who_left_and_rejoined(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "joined")
    join(bob, room_id)
    send(alice, room_id, "first stay")
    leave(bob, room_id)
    send(alice, room_id, "while away")
    join(bob, room_id)
    send(alice, room_id, "second stay")
    assert bodies(timeline(bob, room_id)) == ["first stay", "second stay"]


def test_visibility_changes_apply_per_event(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "shared")
    send(alice, room_id, "shared 1")
    put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "joined"})
    send(alice, room_id, "joined-only 1")
    put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "shared"})
    send(alice, room_id, "shared 2")
    put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "invited"})
    send(alice, room_id, "invited-only 1")
    join(bob, room_id)
    send(alice, room_id, "after join")
    assert bodies(timeline(bob, room_id)) == ["shared 1", "shared 2", "after join"]
    # The creator sees everything.
    assert bodies(timeline(alice, room_id)) == [
        "shared 1", "joined-only 1", "shared 2", "invited-only 1", "after join",
    ]


def test_world_readable_then_restricted(alice: Client, new_user: UserFactory) -> None:
    outsider = new_user("outsider")
    room_id = room_with_visibility(alice, "world_readable")
    open_id = send(alice, room_id, "open")
    assert get_event(outsider, room_id, open_id)["content"]["body"] == "open"
    put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "shared"})
    send(alice, room_id, "closed")
    # No longer world-readable: an outsider is refused.
    assert_error(outsider.get(f"rooms/{path_id(room_id)}/messages", params={"dir": "b"}), 403, "M_FORBIDDEN")
    assert_error(outsider.get(f"rooms/{path_id(room_id)}/state"), 403, "M_FORBIDDEN")
    # A member who joins later sees both (the first was world-readable, the second shared).
    bob = new_user("bob")
    join(bob, room_id)
    assert bodies(timeline(bob, room_id)) == ["open", "closed"]


def test_history_visibility_event_visible_if_before_or_after_allows(alice: Client, new_user: UserFactory) -> None:
    """The spec: a history_visibility event is visible if the visibility before or after it
    allows; the change from shared to joined is therefore visible to a later joiner."""
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "shared")
    change = put_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "joined"})
    hidden = send(alice, room_id, "hidden")
    join(bob, room_id)
    events: list[dict[str, Any]] = timeline(bob, room_id)
    seen = [e["event_id"] for e in events]
    assert change in seen
    assert hidden not in seen


def test_forgotten_room_history_is_no_longer_readable(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "shared")
    join(bob, room_id)
    during = send(alice, room_id, "while joined")
    leave(bob, room_id)
    assert bodies(timeline(bob, room_id)) == ["while joined"]
    resp = bob.post(f"rooms/{path_id(room_id)}/forget", {})
    assert resp.status_code == 200, resp.text
    assert_error(bob.get(f"rooms/{path_id(room_id)}/messages", params={"dir": "b"}), 403, "M_FORBIDDEN")
    assert_error(bob.get(f"rooms/{path_id(room_id)}/state"), 403, "M_FORBIDDEN")
    assert_error(bob.get(f"rooms/{path_id(room_id)}/members"), 403, "M_FORBIDDEN")
    assert event_status(bob, room_id, during) in (403, 404)
    assert context_status(bob, room_id, during) in (403, 404)
    # Joining again brings the room back.
    join(bob, room_id)
    assert bodies(timeline(bob, room_id)) == ["while joined"]


def test_paginating_through_hidden_history_terminates(alice: Client, new_user: UserFactory) -> None:
    bob = new_user("bob")
    room_id = room_with_visibility(alice, "joined")
    for i in range(5):
        send(alice, room_id, f"hidden {i}")
    join(bob, room_id)
    send(alice, room_id, "visible")
    collected: list[dict[str, Any]] = []
    params: dict[str, Any] = {"dir": "b", "limit": 2}
    for _ in range(50):
        page = messages(bob, room_id, **params)
        collected += page["chunk"]
        if "end" not in page:
            break
        params["from"] = page["end"]
    else:
        raise AssertionError("pagination did not end")
    assert bodies(collected) == ["visible"]
