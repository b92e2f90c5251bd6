"""Access control of room reads: what a user who is not (or no longer, or not yet) allowed by
membership and history visibility gets from /state, /members, /joined_members, /messages,
/context, /event, /relations, /threads and /search. Refusals carry the spec's status and
errcode, an event that exists and one that does not get the same answer, and no error body
carries event content."""

import json
from dataclasses import dataclass
from typing import Any

import requests

from tests.harness import Client
from tests.matrix_helpers import assert_error
from tests.rooms.helpers import (
    bodies,
    create_room,
    get_event,
    invite,
    join,
    leave,
    members,
    path_id,
    put_state,
    send,
    timeline,
)

NO_SUCH_EVENT = "$doesNotExistAnywhere0123456789abcdefghijkl"


@dataclass
class PrivateRoom:
    room_id: str
    message: str
    thread_root: str
    thread_reply: str


def private_room(alice: Client, visibility: str = "shared", preset: str = "private_chat") -> PrivateRoom:
    """A room of alice's (private_chat: invite only, history `shared` unless given) with a topic,
    a message, a thread and a reaction, every one carrying a word no outsider may see."""
    room_id = create_room(alice, preset=preset, initial_state=[
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": visibility}},
    ])
    put_state(alice, room_id, "m.room.topic", {"topic": "topsecret-topic"})
    message = send(alice, room_id, "topsecret-message")
    root = send(alice, room_id, "topsecret-thread-root")
    reply = send(alice, room_id, content={"msgtype": "m.text", "body": "topsecret-thread-reply",
                                          "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    send(alice, room_id, event_type="m.reaction",
         content={"m.relates_to": {"rel_type": "m.annotation", "event_id": message, "key": "topsecret-reaction"}})
    return PrivateRoom(room_id, message, root, reply)


def assert_refused(resp: requests.Response, status: int, errcode: str) -> dict[str, Any]:
    """This Matrix error, with no room content in it."""
    body = assert_error(resp, status, errcode)
    assert "topsecret" not in resp.text, resp.text
    return body


def search(client: Client, term: str, rooms: list[str] | None = None) -> requests.Response:
    criteria: dict[str, Any] = {"search_term": term, "keys": ["content.body"]}
    if rooms is not None:
        criteria["filter"] = {"rooms": rooms}
    return client.post("search", {"search_categories": {"room_events": criteria}})


def search_hits(client: Client, term: str, rooms: list[str] | None = None) -> list[str]:
    """The bodies of the events /search finds for `term`."""
    resp = search(client, term, rooms)
    assert resp.status_code == 200, resp.text
    return [r["result"]["content"].get("body") for r in resp.json()["search_categories"]["room_events"]["results"]]


def threads(client: Client, room_id: str) -> list[str]:
    resp = client.get(f"/_matrix/client/v1/rooms/{path_id(room_id)}/threads")
    assert resp.status_code == 200, resp.text
    return [e["event_id"] for e in resp.json()["chunk"]]


def relations(client: Client, room_id: str, event_id: str) -> requests.Response:
    return client.get(f"/_matrix/client/v1/rooms/{path_id(room_id)}/relations/{path_id(event_id)}")


# --- a non-member of a private room ---------------------------------------------------------


def test_non_member_cannot_read_room_state(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    r = path_id(room.room_id)
    whole = assert_refused(mallory.get(f"rooms/{r}/state"), 403, "M_FORBIDDEN")
    topic = assert_refused(mallory.get(f"rooms/{r}/state/m.room.topic/"), 403, "M_FORBIDDEN")
    # State that does not exist gets the same answer as state that does.
    absent = assert_refused(mallory.get(f"rooms/{r}/state/m.room.name/"), 403, "M_FORBIDDEN")
    assert topic == absent
    assert assert_refused(mallory.get(f"rooms/{r}/state/m.room.member/{path_id(alice.user_id)}"),
                          403, "M_FORBIDDEN")["errcode"] == whole["errcode"]


def test_non_member_cannot_list_members(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    r = path_id(room.room_id)
    for resp in (mallory.get(f"rooms/{r}/members"), mallory.get(f"rooms/{r}/joined_members")):
        assert_refused(resp, 403, "M_FORBIDDEN")
        assert alice.user_id not in resp.text


def test_non_member_cannot_paginate_messages(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    r = path_id(room.room_id)
    for params in ({"dir": "b"}, {"dir": "f"}, {"dir": "b", "limit": 1000}):
        assert_refused(mallory.get(f"rooms/{r}/messages", params=params), 403, "M_FORBIDDEN")


def test_non_member_gets_not_found_for_existing_and_missing_events(make_user: Any) -> None:
    """GET /event: the spec's 404 M_NOT_FOUND is "not found or you do not have permission"."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    r = path_id(room.room_id)
    existing = assert_refused(mallory.get(f"rooms/{r}/event/{path_id(room.message)}"), 404, "M_NOT_FOUND")
    missing = assert_refused(mallory.get(f"rooms/{r}/event/{path_id(NO_SUCH_EVENT)}"), 404, "M_NOT_FOUND")
    assert existing == missing


def test_non_member_cannot_get_event_context(make_user: Any) -> None:
    """GET /context: the spec lists no error; like /event (and Synapse for a missing event),
    404 M_NOT_FOUND, the same for an event that exists and one that does not."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    r = path_id(room.room_id)
    existing = assert_refused(mallory.get(f"rooms/{r}/context/{path_id(room.message)}"), 404, "M_NOT_FOUND")
    missing = assert_refused(mallory.get(f"rooms/{r}/context/{path_id(NO_SUCH_EVENT)}"), 404, "M_NOT_FOUND")
    assert existing == missing


def test_non_member_cannot_list_relations(make_user: Any) -> None:
    """GET /relations: the spec's only error is 404 M_NOT_FOUND, "the parent event was not found
    or the user does not have permission to read this event"."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    existing = assert_refused(relations(mallory, room.room_id, room.message), 404, "M_NOT_FOUND")
    root = assert_refused(relations(mallory, room.room_id, room.thread_root), 404, "M_NOT_FOUND")
    missing = assert_refused(relations(mallory, room.room_id, NO_SUCH_EVENT), 404, "M_NOT_FOUND")
    assert existing == root == missing


def test_non_member_cannot_list_threads(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    assert_refused(mallory.get(f"/_matrix/client/v1/rooms/{path_id(room.room_id)}/threads"), 403, "M_FORBIDDEN")


def test_non_member_search_finds_nothing(make_user: Any) -> None:
    """POST /search has no 403 in the spec: it searches the rooms the user may read, so a
    non-member gets no results from the room, even when naming it in the filter."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    assert search_hits(alice, "topsecret", [room.room_id])  # the index has them
    for rooms in (None, [room.room_id]):
        resp = search(mallory, "topsecret", rooms)
        assert resp.status_code == 200, resp.text
        # (`highlights` echoes the search term itself; no event content may appear.)
        for word in ("topsecret-message", "topsecret-thread", "topsecret-topic", room.room_id, alice.user_id):
            assert word not in resp.text, resp.text
        assert resp.json()["search_categories"]["room_events"]["results"] == []
        assert resp.json()["search_categories"]["room_events"].get("count", 0) == 0


def test_invited_user_cannot_read_history_of_joined_only_room(make_user: Any) -> None:
    """An invite is not a membership that reveals a `joined` room's history or state events
    sent before the join."""
    alice, bob = make_user("alice"), make_user("bob")
    room = private_room(alice, "joined")
    invite(alice, room.room_id, bob.user_id)
    r = path_id(room.room_id)
    existing = assert_refused(bob.get(f"rooms/{r}/event/{path_id(room.message)}"), 404, "M_NOT_FOUND")
    assert existing == assert_refused(bob.get(f"rooms/{r}/event/{path_id(NO_SUCH_EVENT)}"), 404, "M_NOT_FOUND")
    resp = bob.get(f"rooms/{r}/messages", params={"dir": "b"})
    if resp.status_code == 200:
        assert "topsecret" not in resp.text
    else:
        assert_refused(resp, 403, "M_FORBIDDEN")


# --- world_readable -------------------------------------------------------------------------


def test_world_readable_room_is_readable_by_non_member(make_user: Any) -> None:
    alice, reader = make_user("alice"), make_user("reader")
    room = private_room(alice, "world_readable")
    r = path_id(room.room_id)
    assert "topsecret-message" in bodies(timeline(reader, room.room_id))
    assert get_event(reader, room.room_id, room.message)["content"]["body"] == "topsecret-message"
    resp = reader.get(f"rooms/{r}/context/{path_id(room.message)}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["event"]["event_id"] == room.message
    resp = reader.get(f"rooms/{r}/state/m.room.topic/")
    assert resp.status_code == 200 and resp.json() == {"topic": "topsecret-topic"}, resp.text
    assert members(reader, room.room_id) == {alice.user_id: "join"}
    resp = relations(reader, room.room_id, room.thread_root)
    assert resp.status_code == 200, resp.text
    assert [e["event_id"] for e in resp.json()["chunk"]] == [room.thread_reply]
    assert threads(reader, room.room_id) == [room.thread_root]
    # An event that does not exist is still just not found.
    assert_refused(reader.get(f"rooms/{r}/event/{path_id(NO_SUCH_EVENT)}"), 404, "M_NOT_FOUND")


# --- a user who left ------------------------------------------------------------------------


def test_user_who_left_sees_history_only_up_to_leaving(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room_id = create_room(alice, preset="public_chat")
    r = path_id(room_id)
    join(bob, room_id)
    during = send(alice, room_id, "while bob was here")
    leave(bob, room_id)
    after = send(alice, room_id, "topsecret after bob left")
    root = send(alice, room_id, "topsecret thread after bob left")
    send(alice, room_id, content={"msgtype": "m.text", "body": "topsecret reply",
                                  "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    put_state(alice, room_id, "m.room.topic", {"topic": "topsecret later topic"})

    assert bodies(timeline(bob, room_id)) == ["while bob was here"]
    forward = bob.get(f"rooms/{r}/messages", params={"dir": "f", "limit": 100})
    assert forward.status_code == 200 and "topsecret" not in forward.text, forward.text
    assert get_event(bob, room_id, during)["content"]["body"] == "while bob was here"
    hidden = assert_refused(bob.get(f"rooms/{r}/event/{path_id(after)}"), 404, "M_NOT_FOUND")
    assert hidden == assert_refused(bob.get(f"rooms/{r}/event/{path_id(NO_SUCH_EVENT)}"), 404, "M_NOT_FOUND")
    assert_refused(bob.get(f"rooms/{r}/context/{path_id(after)}"), 404, "M_NOT_FOUND")
    context = bob.get(f"rooms/{r}/context/{path_id(during)}", params={"limit": 20})
    assert context.status_code == 200 and "topsecret" not in context.text, context.text
    assert_refused(relations(bob, room_id, root), 404, "M_NOT_FOUND")
    state = bob.get(f"rooms/{r}/state")
    assert state.status_code == 200 and "topsecret" not in state.text, state.text
    resp = bob.get(f"/_matrix/client/v1/rooms/{r}/threads")
    assert resp.status_code == 200 and "topsecret" not in resp.text, resp.text
    assert search_hits(bob, "topsecret") == []
    assert search_hits(alice, "topsecret", [room_id])


# --- history_visibility joined and invited ----------------------------------------------------


def test_joined_visibility_hides_events_before_the_join(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = private_room(alice, "joined", preset="public_chat")
    r = path_id(room.room_id)
    join(bob, room.room_id)
    after = send(alice, room.room_id, "seen after join")

    assert bodies(timeline(bob, room.room_id)) == ["seen after join"]
    page = bob.get(f"rooms/{r}/messages", params={"dir": "b", "limit": 100})
    assert page.status_code == 200 and "topsecret" not in page.text, page.text
    hidden = assert_refused(bob.get(f"rooms/{r}/event/{path_id(room.message)}"), 404, "M_NOT_FOUND")
    assert hidden == assert_refused(bob.get(f"rooms/{r}/event/{path_id(NO_SUCH_EVENT)}"), 404, "M_NOT_FOUND")
    assert_refused(bob.get(f"rooms/{r}/context/{path_id(room.message)}"), 404, "M_NOT_FOUND")
    context = bob.get(f"rooms/{r}/context/{path_id(after)}", params={"limit": 20})
    assert context.status_code == 200 and "topsecret" not in json.dumps(context.json()["events_before"]), context.text
    assert_refused(relations(bob, room.room_id, room.thread_root), 404, "M_NOT_FOUND")
    assert room.thread_root not in threads(bob, room.room_id)
    assert search_hits(bob, "topsecret") == []
    # Current state is readable to a member: the topic is the room's, not history.
    assert get_event(bob, room.room_id, after)["content"]["body"] == "seen after join"


def test_invited_visibility_shows_events_from_the_invite(make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    room = private_room(alice, "invited")
    r = path_id(room.room_id)
    invite(alice, room.room_id, bob.user_id)
    while_invited = send(alice, room.room_id, "sent while bob was invited")
    join(bob, room.room_id)
    send(alice, room.room_id, "sent after bob joined")

    assert bodies(timeline(bob, room.room_id)) == ["sent while bob was invited", "sent after bob joined"]
    assert get_event(bob, room.room_id, while_invited)["content"]["body"] == "sent while bob was invited"
    hidden = assert_refused(bob.get(f"rooms/{r}/event/{path_id(room.message)}"), 404, "M_NOT_FOUND")
    assert hidden == assert_refused(bob.get(f"rooms/{r}/event/{path_id(NO_SUCH_EVENT)}"), 404, "M_NOT_FOUND")
    assert_refused(bob.get(f"rooms/{r}/context/{path_id(room.message)}"), 404, "M_NOT_FOUND")
    resp = bob.get(f"rooms/{r}/context/{path_id(while_invited)}", params={"limit": 20})
    assert resp.status_code == 200, resp.text
    assert "topsecret" not in json.dumps(resp.json()["events_before"])
    assert_refused(relations(bob, room.room_id, room.thread_root), 404, "M_NOT_FOUND")
    assert search_hits(bob, "topsecret") == []
    assert sorted(search_hits(bob, "bob")) == ["sent after bob joined", "sent while bob was invited"]


# --- the room's other read endpoints --------------------------------------------------------


NO_SUCH_ROOM = "!doesNotExist0123456789:nowhere.invalid"


def test_non_member_cannot_initial_sync_room(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    assert_refused(mallory.get(f"rooms/{path_id(room.room_id)}/initialSync"), 403, "M_FORBIDDEN")


def test_non_member_cannot_find_events_by_timestamp(make_user: Any) -> None:
    """The spec's 404 is "no event was found"; a non-member is refused (403, as Synapse)."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    params = {"ts": 2**41, "dir": "b"}
    resp = mallory.get(f"/_matrix/client/v1/rooms/{path_id(room.room_id)}/timestamp_to_event", params=params)
    assert_refused(resp, 403, "M_FORBIDDEN")
    assert room.message not in resp.text and room.thread_reply not in resp.text


def test_non_member_cannot_list_room_aliases(make_user: Any, server_name: str) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    alias = f"#topsecret-alias-{alice.user_id[1:].split(':')[0]}:{server_name}"
    resp = alice.put(f"directory/room/{path_id(alias)}", {"room_id": room.room_id})
    assert resp.status_code == 200, resp.text
    resp = mallory.get(f"rooms/{path_id(room.room_id)}/aliases")
    assert_refused(resp, 403, "M_FORBIDDEN")


def test_non_member_cannot_browse_private_space_hierarchy(make_user: Any) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    existing = assert_refused(mallory.get(f"/_matrix/client/v1/rooms/{path_id(room.room_id)}/hierarchy"),
                              403, "M_FORBIDDEN")
    missing = assert_refused(mallory.get(f"/_matrix/client/v1/rooms/{path_id(NO_SUCH_ROOM)}/hierarchy"),
                             403, "M_FORBIDDEN")
    assert existing["errcode"] == missing["errcode"]


def test_non_member_gets_no_summary_of_private_room(make_user: Any) -> None:
    """MSC3266 / Synapse: a room the user may not preview is "not found", like a missing one."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    resp = mallory.get(f"/_matrix/client/v1/room_summary/{path_id(room.room_id)}")
    existing = assert_refused(resp, 404, "M_NOT_FOUND")
    assert "topsecret" not in resp.text
    missing = assert_refused(mallory.get(f"/_matrix/client/v1/room_summary/{path_id(NO_SUCH_ROOM)}"),
                             404, "M_NOT_FOUND")
    assert existing["errcode"] == missing["errcode"]


def test_non_member_cannot_peek_with_events(make_user: Any) -> None:
    """GET /events?room_id= (peeking, for world_readable rooms only): a private room's events,
    old or new, never reach a non-member. Synapse refuses with 403 M_FORBIDDEN ("Non-joined
    access not allowed"); the spec gives no error, and a 200 without the room's events leaks
    nothing either (this server ignores `room_id`: it has no peeking)."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    first = mallory.get("events", params={"room_id": room.room_id, "timeout": 0})
    if first.status_code != 200:
        assert_refused(first, 403, "M_FORBIDDEN")
        return
    assert "topsecret" not in first.text and room.room_id not in first.text, first.text
    send(alice, room.room_id, "topsecret-later")
    later = mallory.get("events", params={"room_id": room.room_id, "from": first.json()["end"], "timeout": 300})
    assert later.status_code == 200, later.text
    assert "topsecret" not in later.text and room.room_id not in later.text, later.text


def test_private_room_and_missing_room_look_the_same_to_a_non_member(make_user: Any) -> None:
    """Whether a private room exists is not revealed by its read endpoints (Synapse answers 403
    M_FORBIDDEN for both)."""
    alice, mallory = make_user("alice"), make_user("mallory")
    room = private_room(alice)
    for suffix, params in (("state", None), ("state/m.room.topic/", None), ("members", None),
                           ("joined_members", None), ("messages", {"dir": "b"})):
        existing = mallory.get(f"rooms/{path_id(room.room_id)}/{suffix}", params=params)
        missing = mallory.get(f"rooms/{path_id(NO_SUCH_ROOM)}/{suffix}", params=params)
        assert_refused(existing, 403, "M_FORBIDDEN")
        assert_refused(missing, 403, "M_FORBIDDEN")
