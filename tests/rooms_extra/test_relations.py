"""/_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]: children of
an event, paging, filters, direction and recursion, on both engines."""

from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import (
    V1,
    create_room,
    enc,
    invite,
    join,
    react,
    redact,
    say,
    send,
    thread_reply,
)
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

SPEC_PATHS = {
    0: "/rooms/{roomId}/relations/{eventId}",
    1: "/rooms/{roomId}/relations/{eventId}/{relType}",
    2: "/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}",
}


def relations(client: Client, room_id: str, event_id: str, *filters: str, **params: Any) -> dict[str, Any]:
    path = f"{V1}/rooms/{enc(room_id)}/relations/{enc(event_id)}" + "".join(f"/{enc(f)}" for f in filters)
    resp = client.get(path, params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "relations.yaml", SPEC_PATHS[len(filters)], "get", 200)
    return body  # type: ignore[no-any-return]


def ids(body: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in body["chunk"]]


def edit(client: Client, room_id: str, event_id: str, body: str) -> str:
    return send(client, room_id, {
        "msgtype": "m.text", "body": f"* {body}", "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    })


def test_children_newest_first_with_paging(make_user: Any) -> None:
    alice = make_user("rel")
    room_id = create_room(alice)
    parent = say(alice, room_id, "parent")
    say(alice, room_id, "unrelated")
    children = [react(alice, room_id, parent, key) for key in ("👍", "👎", "🎉", "❤️", "😀")]

    everything = relations(alice, room_id, parent)
    assert ids(everything) == children[::-1]
    assert "next_batch" not in everything and "recursion_depth" not in everything
    event = everything["chunk"][0]
    assert event["type"] == "m.reaction" and event["sender"] == alice.user_id and event["room_id"] == room_id
    assert event["content"]["m.relates_to"] == {"rel_type": "m.annotation", "event_id": parent, "key": "😀"}

    first = relations(alice, room_id, parent, limit=2)
    assert ids(first) == children[:2:-1]
    second = relations(alice, room_id, parent, limit=2, **{"from": first["next_batch"]})
    assert ids(second) == children[2:0:-1]
    third = relations(alice, room_id, parent, limit=2, **{"from": second["next_batch"]})
    assert ids(third) == children[:1]
    assert "next_batch" not in third
    # `to` stops at a previous page's token: from page 1's end to page 2's end is page 2.
    bounded = relations(alice, room_id, parent, **{"from": first["next_batch"], "to": second["next_batch"]})
    assert ids(bounded) == ids(second)

    # An event without children has an empty chunk.
    assert relations(alice, room_id, children[0])["chunk"] == []


def test_forwards(make_user: Any) -> None:
    alice = make_user("rel")
    room_id = create_room(alice)
    parent = say(alice, room_id, "parent")
    children = [react(alice, room_id, parent, str(i)) for i in range(4)]
    assert ids(relations(alice, room_id, parent, dir="f")) == children
    first = relations(alice, room_id, parent, dir="f", limit=3)
    assert ids(first) == children[:3]
    rest = relations(alice, room_id, parent, dir="f", limit=3, **{"from": first["next_batch"]})
    assert ids(rest) == children[3:]
    assert "next_batch" not in rest


def test_filter_by_rel_type_and_event_type(make_user: Any) -> None:
    alice = make_user("rel")
    room_id = create_room(alice)
    parent = say(alice, room_id, "parent")
    reaction = react(alice, room_id, parent, "👍")
    fixed = edit(alice, room_id, parent, "parent (edited)")
    reply = thread_reply(alice, room_id, parent, "in a thread")
    custom = send(alice, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": parent, "key": "x"}},
                  "org.example.vote")

    assert ids(relations(alice, room_id, parent)) == [custom, reply, fixed, reaction]
    assert ids(relations(alice, room_id, parent, "m.annotation")) == [custom, reaction]
    assert ids(relations(alice, room_id, parent, "m.replace")) == [fixed]
    assert ids(relations(alice, room_id, parent, "m.thread")) == [reply]
    assert ids(relations(alice, room_id, parent, "m.annotation", "m.reaction")) == [reaction]
    assert ids(relations(alice, room_id, parent, "m.annotation", "org.example.vote")) == [custom]
    assert relations(alice, room_id, parent, "m.reference")["chunk"] == []
    assert relations(alice, room_id, parent, "m.thread", "m.reaction")["chunk"] == []


def test_recurse_returns_grandchildren(make_user: Any) -> None:
    alice = make_user("rel")
    room_id = create_room(alice)
    root = say(alice, room_id, "root")
    reply = thread_reply(alice, room_id, root, "reply")
    reaction_to_reply = react(alice, room_id, reply, "👀")
    reaction_to_reaction = send(alice, room_id, {"m.relates_to": {"rel_type": "m.reference", "event_id": reaction_to_reply}},
                                "org.example.note")

    direct = relations(alice, room_id, root)
    assert ids(direct) == [reply]
    assert "recursion_depth" not in direct

    deep = relations(alice, room_id, root, recurse="true")
    assert ids(deep) == [reaction_to_reaction, reaction_to_reply, reply]
    assert isinstance(deep["recursion_depth"], int) and deep["recursion_depth"] >= 3

    # Filters apply to every level.
    only_reactions = relations(alice, room_id, root, "m.annotation", recurse="true")
    assert ids(only_reactions) == [reaction_to_reply]
    assert only_reactions["recursion_depth"] >= 3
    assert ids(relations(alice, room_id, root, "m.annotation", "m.reaction", recurse="true")) == [reaction_to_reply]
    assert ids(relations(alice, room_id, root, recurse="true", dir="f", limit=2)) == [reply, reaction_to_reply]


def test_unknown_or_invisible_parent_is_not_found(make_user: Any) -> None:
    alice, bob, outsider = make_user("rel"), make_user("bob"), make_user("out")
    room_id = create_room(alice, preset="private_chat")
    put = alice.put(f"rooms/{enc(room_id)}/state/m.room.history_visibility/", {"history_visibility": "joined"})
    assert put.status_code == 200, put.text
    early = say(alice, room_id, "before bob joined")
    react(alice, room_id, early, "👍")
    invite(alice, room_id, bob.user_id)
    join(bob, room_id)
    late = say(alice, room_id, "after bob joined")
    react(alice, room_id, late, "👍")

    assert len(relations(bob, room_id, late)["chunk"]) == 1
    # Bob joined after `early` and the room's history is only visible to joined members.
    body = assert_error(bob.get(f"{V1}/rooms/{enc(room_id)}/relations/{enc(early)}"), 404, "M_NOT_FOUND")
    assert_matches_spec(body, "relations.yaml", SPEC_PATHS[0], "get", 404)
    assert_error(outsider.get(f"{V1}/rooms/{enc(room_id)}/relations/{enc(late)}"), 404, "M_NOT_FOUND")
    assert_error(alice.get(f"{V1}/rooms/{enc(room_id)}/relations/{enc('$unknown')}"), 404, "M_NOT_FOUND")
    # The event exists, but in another room than the one asked about.
    other = create_room(alice)
    assert_error(alice.get(f"{V1}/rooms/{enc(other)}/relations/{enc(late)}/m.annotation"), 404, "M_NOT_FOUND")


def test_relation_from_another_room_is_not_a_child(make_user: Any) -> None:
    alice = make_user("rel")
    room_id, other = create_room(alice), create_room(alice)
    parent = say(alice, room_id, "parent")
    local = react(alice, room_id, parent, "👍")
    react(alice, other, parent, "👻")
    assert ids(relations(alice, room_id, parent)) == [local]
    assert ids(relations(alice, room_id, parent, recurse="true")) == [local]


def test_redacted_child_is_no_longer_related(make_user: Any) -> None:
    alice = make_user("rel")
    room_id = create_room(alice)
    parent = say(alice, room_id, "parent")
    kept = react(alice, room_id, parent, "👍")
    removed = react(alice, room_id, parent, "👎")
    redact(alice, room_id, removed)
    assert ids(relations(alice, room_id, parent)) == [kept]
    assert ids(relations(alice, room_id, parent, "m.annotation", "m.reaction")) == [kept]


def test_joined_member_sees_relations_sent_by_others(make_user: Any) -> None:
    alice, bob = make_user("rel"), make_user("bob")
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    parent = say(alice, room_id, "parent")
    theirs = react(bob, room_id, parent, "👍")
    body = relations(alice, room_id, parent)
    assert ids(body) == [theirs]
    assert body["chunk"][0]["sender"] == bob.user_id
