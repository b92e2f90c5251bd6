"""Reading rooms: /messages pagination (directions, tokens, `to`, filters, lazy-loaded members),
/context, /members, /joined_members and the full /state."""

from typing import Any

import pytest

from tests.harness import Client
from tests.rooms.conftest import UserFactory
from tests.rooms.helpers import (
    assert_client_event,
    bodies,
    create_room,
    invite,
    join,
    leave,
    members,
    messages,
    path_id,
    public_room,
    put_state,
    send,
)
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

MESSAGES = [f"m{i}" for i in range(1, 11)]


class History:
    """A public room: alice creates it, bob joins, then m1..m10 alternate alice/bob with a
    com.example.note from alice after m5."""

    def __init__(self, alice: Client, bob: Client):
        self.room_id = public_room(alice)
        join(bob, self.room_id)
        self.ids: dict[str, str] = {}
        for index, body in enumerate(MESSAGES):
            self.ids[body] = send(alice if index % 2 == 0 else bob, self.room_id, body)
            if body == "m5":
                self.ids["note"] = send(alice, self.room_id, event_type="com.example.note", content={"body": "note"})
        # Every event, oldest first, as the room's creator reads it.
        self.all = list(reversed(messages(alice, self.room_id, dir="b", limit=100)["chunk"]))
        self.create_id = self.all[0]["event_id"]


@pytest.fixture(scope="module")
def history(alice: Client, bob: Client) -> History:
    return History(alice, bob)


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]


def paginate(client: Client, room_id: str, direction: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every event from `from` (or the room's edge) onwards, page by page until a page has no
    `end`."""
    collected: list[dict[str, Any]] = []
    for _ in range(100):
        page = messages(client, room_id, dir=direction, limit=limit, **params)
        assert len(page["chunk"]) <= limit
        collected += page["chunk"]
        if "end" not in page:
            return collected
        assert page["chunk"], "a page with an `end` has events"
        params["from"] = page["end"]
    raise AssertionError("pagination did not end")


# --- /messages ----------------------------------------------------------------------------------


def test_full_history_shape(history: History, alice: Client, bob: Client) -> None:
    assert history.all[0]["type"] == "m.room.create"
    assert history.all[0]["state_key"] == ""
    assert bodies(history.all) == MESSAGES
    types = [e["type"] for e in history.all]
    assert types.count("com.example.note") == 1
    assert types.index("m.room.power_levels") < types.index("m.room.message")
    assert len(set(ids(history.all))) == len(history.all)


def test_backwards_from_the_end(history: History, bob: Client) -> None:
    page = messages(bob, history.room_id, dir="b", limit=3)
    assert bodies(page["chunk"]) == ["m10", "m9", "m8"]
    assert isinstance(page["start"], str) and isinstance(page["end"], str)
    assert page["chunk"][0]["sender"] == bob.user_id
    # Timestamps never go up going backwards.
    stamps = [e["origin_server_ts"] for e in history.all]
    assert stamps == sorted(stamps)


def test_default_direction_and_limit(history: History, alice: Client) -> None:
    resp = alice.get(f"rooms/{path_id(history.room_id)}/messages")
    assert resp.status_code == 200, resp.text
    chunk = resp.json()["chunk"]
    assert ids(chunk) == ids(list(reversed(history.all)))[:10]


@pytest.mark.parametrize("limit", [1, 4, 7, 100])
def test_paginate_backwards_to_the_create_event(history: History, alice: Client, limit: int) -> None:
    events = paginate(alice, history.room_id, "b", limit)
    assert ids(events) == ids(list(reversed(history.all)))
    assert events[-1]["type"] == "m.room.create"


@pytest.mark.parametrize("limit", [1, 5, 100])
def test_paginate_forwards_from_the_start(history: History, bob: Client, limit: int) -> None:
    events = paginate(bob, history.room_id, "f", limit)
    assert ids(events) == ids(history.all)
    assert events[0]["type"] == "m.room.create"


def test_pages_continue_where_the_last_ended(history: History, alice: Client) -> None:
    first = messages(alice, history.room_id, dir="b", limit=2)
    second = messages(alice, history.room_id, dir="b", limit=2, **{"from": first["end"]})
    assert bodies(first["chunk"]) == ["m10", "m9"]
    assert bodies(second["chunk"]) == ["m8", "m7"]
    assert second["start"] == first["end"]
    forward = messages(alice, history.room_id, dir="f", limit=3)
    assert ids(forward["chunk"]) == ids(history.all[:3])
    more = messages(alice, history.room_id, dir="f", limit=3, **{"from": forward["end"]})
    assert ids(more["chunk"]) == ids(history.all[3:6])


def test_to_bound(history: History, alice: Client) -> None:
    # Forwards up to a forward page's `end`: that page again.
    forward = messages(alice, history.room_id, dir="f", limit=5)
    up_to = messages(alice, history.room_id, dir="f", limit=100, to=forward["end"])
    assert ids(up_to["chunk"]) == ids(history.all[:5])
    assert "end" not in up_to
    further = messages(alice, history.room_id, dir="f", limit=8)
    between = messages(alice, history.room_id, dir="f", limit=100, to=further["end"], **{"from": forward["end"]})
    assert ids(between["chunk"]) == ids(history.all[5:8])
    # Backwards down to a backward page's `end`: that page again.
    backward = messages(alice, history.room_id, dir="b", limit=3)
    again = messages(alice, history.room_id, dir="b", limit=100, to=backward["end"])
    assert ids(again["chunk"]) == ids(backward["chunk"])
    deeper = messages(alice, history.room_id, dir="b", limit=6)
    between = messages(alice, history.room_id, dir="b", limit=100, to=deeper["end"], **{"from": backward["end"]})
    assert ids(between["chunk"]) == ids(deeper["chunk"][3:])
    # A limit smaller than the range still gives an `end` to go on with.
    part = messages(alice, history.room_id, dir="b", limit=2, to=deeper["end"])
    assert ids(part["chunk"]) == ids(deeper["chunk"][:2])
    rest = messages(alice, history.room_id, dir="b", limit=100, to=deeper["end"], **{"from": part["end"]})
    assert ids(rest["chunk"]) == ids(deeper["chunk"][2:])


def test_start_token_of_the_latest_page(history: History, alice: Client) -> None:
    """Paginating back from the end gives a `start` for the present: newer events are read
    forwards from it, and it bounds a later backward pagination."""
    room_id = create_room(alice)
    send(alice, room_id, "old")
    first = messages(alice, room_id, dir="b", limit=5)
    assert bodies(first["chunk"]) == ["old"]
    send(alice, room_id, "new")
    newer = messages(alice, room_id, dir="f", limit=10, **{"from": first["start"]})
    assert bodies(newer["chunk"]) == ["new"]
    since = messages(alice, room_id, dir="b", limit=10, to=first["start"])
    assert bodies(since["chunk"]) == ["new"]


def test_limit_larger_than_the_room(history: History, alice: Client) -> None:
    page = messages(alice, history.room_id, dir="b", limit=1000)
    assert ids(page["chunk"]) == ids(list(reversed(history.all)))
    assert "end" not in page


def test_empty_page_at_the_room_start(history: History, alice: Client) -> None:
    resp = alice.get(f"rooms/{path_id(history.room_id)}/context/{path_id(history.create_id)}", params={"limit": 0})
    assert resp.status_code == 200, resp.text
    page = messages(alice, history.room_id, dir="b", limit=10, **{"from": resp.json()["start"]})
    assert page["chunk"] == []
    assert "end" not in page


def test_empty_page_at_the_room_end(alice: Client) -> None:
    room_id = create_room(alice)
    events = paginate(alice, room_id, "f", 3)
    assert events[0]["type"] == "m.room.create"
    last = messages(alice, room_id, dir="f", limit=len(events))
    assert "end" in last
    page = messages(alice, room_id, dir="f", limit=10, **{"from": last["end"]})
    assert page["chunk"] == []
    assert "end" not in page
    # A new event appears from the same token.
    send(alice, room_id, "later")
    page = messages(alice, room_id, dir="f", limit=10, **{"from": last["end"]})
    assert bodies(page["chunk"]) == ["later"]


def test_filter_types(history: History, alice: Client) -> None:
    page = messages(alice, history.room_id, dir="b", limit=100, filter={"types": ["m.room.message"]})
    assert [e["type"] for e in page["chunk"]] == ["m.room.message"] * 10
    page = messages(alice, history.room_id, dir="f", limit=100, filter={"types": ["com.example.note", "m.room.create"]})
    assert [e["type"] for e in page["chunk"]] == ["m.room.create", "com.example.note"]


def test_filter_not_types(history: History, alice: Client) -> None:
    page = messages(alice, history.room_id, dir="f", limit=100,
                    filter={"not_types": ["m.room.message", "m.room.member", "m.room.power_levels"]})
    types = [e["type"] for e in page["chunk"]]
    assert "m.room.message" not in types and "m.room.member" not in types
    assert types[0] == "m.room.create"
    assert "com.example.note" in types and "m.room.join_rules" in types


def test_filter_senders(history: History, alice: Client, bob: Client) -> None:
    page = messages(alice, history.room_id, dir="b", limit=100, filter={"senders": [bob.user_id]})
    assert {e["sender"] for e in page["chunk"]} == {bob.user_id}
    assert bodies(page["chunk"]) == ["m10", "m8", "m6", "m4", "m2"]
    page = messages(alice, history.room_id, dir="b", limit=100,
                    filter={"not_senders": [bob.user_id], "types": ["m.room.message"]})
    assert bodies(page["chunk"]) == ["m9", "m7", "m5", "m3", "m1"]


def test_filter_with_pagination(history: History, alice: Client) -> None:
    collected = paginate(alice, history.room_id, "b", 3, filter='{"types": ["m.room.message"]}')
    assert bodies(collected) == list(reversed(MESSAGES))


def test_lazy_load_members(history: History, alice: Client, bob: Client) -> None:
    page = messages(alice, history.room_id, dir="b", limit=2,
                    filter={"lazy_load_members": True, "types": ["m.room.message"]})
    assert bodies(page["chunk"]) == ["m10", "m9"]
    state = page["state"]
    for event in state:
        assert_client_event(event)
    assert {(e["type"], e["state_key"]) for e in state} == {("m.room.member", alice.user_id), ("m.room.member", bob.user_id)}
    assert all(e["content"]["membership"] == "join" for e in state)

    page = messages(alice, history.room_id, dir="b", limit=3,
                    filter={"lazy_load_members": True, "senders": [bob.user_id]})
    assert {e["state_key"] for e in page["state"]} == {bob.user_id}
    # Without lazy loading there is no state.
    assert "state" not in messages(alice, history.room_id, dir="b", limit=2) or \
        messages(alice, history.room_id, dir="b", limit=2)["state"] == []


@pytest.mark.parametrize("direction", ["b", "f"])
def test_lazy_load_members_of_senders_who_joined_within_the_page(alice: Client, new_user: UserFactory,
                                                                   direction: str) -> None:
    late = new_user("late")
    room_id = public_room(alice)
    send(alice, room_id, "before the join")
    join(late, room_id)
    send(late, room_id, "from the late joiner")
    page = messages(alice, room_id, dir=direction, limit=100,
                    filter={"lazy_load_members": True, "types": ["m.room.message"]})
    assert sorted(bodies(page["chunk"])) == ["before the join", "from the late joiner"]
    state = {e["state_key"]: e["content"]["membership"] for e in page["state"] if e["type"] == "m.room.member"}
    assert state == {alice.user_id: "join", late.user_id: "join"}


@pytest.mark.parametrize("params", [
    {"from": "not-a-token"},
    {"from": "tx-y"},
    {"to": "garbage"},
    {"from": "s"},
])
def test_invalid_token(history: History, alice: Client, params: dict[str, str]) -> None:
    resp = alice.get(f"rooms/{path_id(history.room_id)}/messages", params={"dir": "b", **params})
    assert_error(resp, 400, "M_INVALID_PARAM")


@pytest.mark.parametrize("params", [
    {"dir": "sideways"},
    {"limit": "ten"},
    {"filter": "{not json"},
    {"filter": "[1]"},
    {"filter": '{"types": "m.room.message"}'},
])
def test_invalid_params(history: History, alice: Client, params: dict[str, str]) -> None:
    resp = alice.get(f"rooms/{path_id(history.room_id)}/messages", params=params)
    assert_error(resp, 400)


def test_messages_of_private_room_for_non_member(alice: Client, carol: Client) -> None:
    room_id = create_room(alice, preset="private_chat")
    send(alice, room_id, "secret")
    assert_error(carol.get(f"rooms/{path_id(room_id)}/messages", params={"dir": "b"}), 403, "M_FORBIDDEN")


def test_messages_of_unknown_room(alice: Client, server_name: str) -> None:
    resp = alice.get(f"rooms/{path_id(f'!nope:{server_name}')}/messages", params={"dir": "b"})
    assert resp.status_code in (403, 404), resp.text
    assert_error(resp, resp.status_code)


# --- /context -----------------------------------------------------------------------------------


def context(client: Client, room_id: str, event_id: str, **params: Any) -> dict[str, Any]:
    resp = client.get(f"rooms/{path_id(room_id)}/context/{path_id(event_id)}", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "event_context.yaml", "/rooms/{roomId}/context/{eventId}", "get", 200)
    for event in [body["event"], *body["events_before"], *body["events_after"], *body["state"]]:
        assert_client_event(event)
    return body  # type: ignore[no-any-return]


def test_context(history: History, bob: Client, alice: Client) -> None:
    body = context(bob, history.room_id, history.ids["m5"], limit=4)
    assert body["event"]["event_id"] == history.ids["m5"]
    assert body["event"]["content"]["body"] == "m5"
    # Before: newest first; after: oldest first.
    assert ids(body["events_before"]) == [history.ids["m4"], history.ids["m3"]]
    assert ids(body["events_after"]) == [history.ids["note"], history.ids["m6"]]
    state = {(e["type"], e["state_key"]): e for e in body["state"]}
    assert {("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.join_rules", ""),
            ("m.room.member", alice.user_id), ("m.room.member", bob.user_id)} <= state.keys()
    assert state[("m.room.member", bob.user_id)]["content"]["membership"] == "join"


def test_context_tokens_continue_with_messages(history: History, alice: Client) -> None:
    body = context(alice, history.room_id, history.ids["m5"], limit=4)
    earlier = messages(alice, history.room_id, dir="b", limit=2, **{"from": body["start"]})
    assert bodies(earlier["chunk"]) == ["m2", "m1"]
    later = messages(alice, history.room_id, dir="f", limit=2, **{"from": body["end"]})
    assert bodies(later["chunk"]) == ["m7", "m8"]


def test_context_limits(history: History, alice: Client) -> None:
    body = context(alice, history.room_id, history.ids["m5"], limit=0)
    assert body["events_before"] == [] and body["events_after"] == []
    body = context(alice, history.room_id, history.ids["m5"], limit=1)
    assert len(body["events_before"]) + len(body["events_after"]) == 1
    body = context(alice, history.room_id, history.ids["m10"], limit=6)
    assert body["events_after"] == []
    assert bodies(body["events_before"]) == ["m9", "m8", "m7"]
    body = context(alice, history.room_id, history.create_id, limit=6)
    assert body["events_before"] == []
    assert ids(body["events_after"]) == ids(history.all[1:4])


def test_context_filter(history: History, alice: Client) -> None:
    body = context(alice, history.room_id, history.ids["m5"], limit=4, filter='{"types": ["m.room.message"]}')
    assert bodies(body["events_after"]) == ["m6", "m7"]
    assert bodies(body["events_before"]) == ["m4", "m3"]


def test_context_state_is_at_the_last_event_returned(alice: Client) -> None:
    room_id = create_room(alice)
    put_state(alice, room_id, "m.room.topic", {"topic": "old"})
    anchor = send(alice, room_id, "anchor")
    put_state(alice, room_id, "m.room.topic", {"topic": "new"})
    body = context(alice, room_id, anchor, limit=4)
    topics = [e["content"] for e in body["state"] if e["type"] == "m.room.topic"]
    assert topics == [{"topic": "new"}]
    body = context(alice, room_id, anchor, limit=0)
    topics = [e["content"] for e in body["state"] if e["type"] == "m.room.topic"]
    assert topics == [{"topic": "old"}]


def test_context_unknown_event(history: History, alice: Client) -> None:
    resp = alice.get(f"rooms/{path_id(history.room_id)}/context/{path_id('$nope')}")
    assert_error(resp, 404, "M_NOT_FOUND")


def test_context_event_of_another_room(history: History, alice: Client) -> None:
    other = create_room(alice)
    elsewhere = send(alice, other, "elsewhere")
    assert_error(alice.get(f"rooms/{path_id(history.room_id)}/context/{path_id(elsewhere)}"), 404, "M_NOT_FOUND")


def test_context_in_private_room_for_non_member(alice: Client, carol: Client) -> None:
    room_id = create_room(alice)
    event_id = send(alice, room_id, "secret")
    resp = carol.get(f"rooms/{path_id(room_id)}/context/{path_id(event_id)}")
    assert resp.status_code in (403, 404), resp.text
    assert_error(resp, resp.status_code)


# --- /members, /joined_members, /state ------------------------------------------------------------


@pytest.fixture(scope="module")
def crowd(alice: Client, bob: Client, carol: Client, new_user: UserFactory) -> dict[str, str]:
    """A public room with alice and bob joined, carol invited, dave left and erin banned;
    returns user ids by name and the room id under "room"."""
    dave, erin = new_user("dave"), new_user("erin")
    room_id = public_room(alice)
    join(bob, room_id)
    invite(alice, room_id, carol.user_id)
    join(dave, room_id)
    leave(dave, room_id)
    join(erin, room_id)
    resp = alice.post(f"rooms/{path_id(room_id)}/ban", {"user_id": erin.user_id})
    assert resp.status_code == 200, resp.text
    return {"room": room_id, "alice": alice.user_id or "", "bob": bob.user_id or "", "carol": carol.user_id or "",
            "dave": dave.user_id or "", "erin": erin.user_id or ""}


def test_members(crowd: dict[str, str], alice: Client, bob: Client) -> None:
    expected = {crowd["alice"]: "join", crowd["bob"]: "join", crowd["carol"]: "invite",
                crowd["dave"]: "leave", crowd["erin"]: "ban"}
    assert members(alice, crowd["room"]) == expected
    assert members(bob, crowd["room"]) == expected


@pytest.mark.parametrize("params, expected", [
    ({"membership": "join"}, ["alice", "bob"]),
    ({"membership": "invite"}, ["carol"]),
    ({"membership": "leave"}, ["dave"]),
    ({"membership": "ban"}, ["erin"]),
    ({"membership": "knock"}, []),
    ({"not_membership": "leave"}, ["alice", "bob", "carol", "erin"]),
    ({"not_membership": "join"}, ["carol", "dave", "erin"]),
    ({"membership": "join", "not_membership": "leave"}, ["alice", "bob"]),
])
def test_members_filters(crowd: dict[str, str], alice: Client, params: dict[str, str], expected: list[str]) -> None:
    assert set(members(alice, crowd["room"], **params)) == {crowd[name] for name in expected}


def test_members_bad_filter(crowd: dict[str, str], alice: Client) -> None:
    assert_error(alice.get(f"rooms/{path_id(crowd['room'])}/members", params={"membership": "joined"}), 400)


def test_members_at_token(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    point = messages(alice, room_id, dir="b", limit=1)["start"]
    join(bob, room_id)
    assert members(alice, room_id) == {alice.user_id: "join", bob.user_id: "join"}
    assert members(alice, room_id, at=point) == {alice.user_id: "join"}


def test_members_for_non_member(crowd: dict[str, str], new_user: UserFactory) -> None:
    outsider = new_user("outsider")
    resp = outsider.get(f"rooms/{path_id(crowd['room'])}/members")
    assert_error(resp, 403, "M_FORBIDDEN")


def test_joined_members(crowd: dict[str, str], alice: Client, bob: Client) -> None:
    resp = alice.get(f"rooms/{path_id(crowd['room'])}/joined_members")
    assert resp.status_code == 200, resp.text
    joined = resp.json()["joined"]
    assert set(joined) == {crowd["alice"], crowd["bob"]}
    for entry in joined.values():
        assert "display_name" in entry and "avatar_url" in entry
    # Like Synapse, unknown profile fields are null; everything present must match the spec.
    cleaned = {user: {k: v for k, v in entry.items() if v is not None} for user, entry in joined.items()}
    assert_matches_spec({"joined": cleaned}, "rooms.yaml", "/rooms/{roomId}/joined_members", "get", 200)


def test_joined_members_display_name(alice: Client, bob: Client) -> None:
    room_id = public_room(alice)
    join(bob, room_id)
    put_state(bob, room_id, "m.room.member", {"membership": "join", "displayname": "Bobby",
                                             "avatar_url": "mxc://test.local/abc"}, bob.user_id)
    resp = alice.get(f"rooms/{path_id(room_id)}/joined_members")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["joined"][bob.user_id] == {"display_name": "Bobby", "avatar_url": "mxc://test.local/abc"}
    assert_matches_spec({"joined": {bob.user_id: body["joined"][bob.user_id]}}, "rooms.yaml",
                        "/rooms/{roomId}/joined_members", "get", 200)


def test_joined_members_for_non_member(crowd: dict[str, str], carol: Client) -> None:
    # carol is only invited
    assert_error(carol.get(f"rooms/{path_id(crowd['room'])}/joined_members"), 403, "M_FORBIDDEN")


def test_full_state(crowd: dict[str, str], alice: Client) -> None:
    resp = alice.get(f"rooms/{path_id(crowd['room'])}/state")
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "rooms.yaml", "/rooms/{roomId}/state", "get", 200)
    state = {}
    for event in resp.json():
        assert_client_event(event)
        assert "state_key" in event
        assert event["room_id"] == crowd["room"]
        key = (event["type"], event["state_key"])
        assert key not in state, f"duplicate state {key}"
        state[key] = event
    assert state[("m.room.create", "")]["content"]["room_version"]
    assert state[("m.room.power_levels", "")]["content"]["users"][crowd["alice"]] == 100
    assert state[("m.room.join_rules", "")]["content"]["join_rule"] == "public"
    assert state[("m.room.history_visibility", "")]["content"]["history_visibility"] == "shared"
    memberships = {k[1]: e["content"]["membership"] for k, e in state.items() if k[0] == "m.room.member"}
    assert memberships == {crowd["alice"]: "join", crowd["bob"]: "join", crowd["carol"]: "invite",
                           crowd["dave"]: "leave", crowd["erin"]: "ban"}
    # Only state: no messages.
    assert all(e["type"] != "m.room.message" for e in resp.json())


def test_full_state_for_non_member(alice: Client, carol: Client) -> None:
    room_id = create_room(alice)
    assert_error(carol.get(f"rooms/{path_id(room_id)}/state"), 403, "M_FORBIDDEN")
