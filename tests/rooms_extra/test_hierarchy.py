"""/_matrix/client/v1/rooms/{roomId}/hierarchy: a space with child rooms and a nested sub-space,
walked depth-first with children in the spec's order, children_state, max_depth, limit +
next_batch, suggested_only and access (including restricted rooms), on both engines."""

from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import V1, create_room, enc, invite, join, put_state
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

SPACE = {"type": "m.space"}


def hierarchy(client: Client, room_id: str, **params: Any) -> dict[str, Any]:
    resp = client.get(f"{V1}/rooms/{enc(room_id)}/hierarchy", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert_matches_spec(body, "space_hierarchy.yaml", "/rooms/{roomId}/hierarchy", "get", 200)
    return body  # type: ignore[no-any-return]


def room_ids(body: dict[str, Any]) -> list[str]:
    return [r["room_id"] for r in body["rooms"]]


def add_child(client: Client, space: str, child: str, **extra: Any) -> None:
    put_state(client, space, "m.space.child", {"via": ["test.local"], **extra}, child)


def build_space(alice: Client) -> dict[str, str]:
    """space -> {subspace -> {deep}, first, suggested, private}; children ordered by `order`."""
    rooms = {
        "space": create_room(alice, preset="public_chat", name="The space", topic="Everything", creation_content=SPACE),
        "subspace": create_room(alice, preset="public_chat", name="Sub-space", creation_content=SPACE),
        "first": create_room(alice, preset="public_chat", name="First room"),
        "suggested": create_room(alice, preset="public_chat", name="Suggested room"),
        "private": create_room(alice, preset="private_chat", name="Private room"),
        "deep": create_room(alice, preset="public_chat", name="Deep room"),
    }
    add_child(alice, rooms["space"], rooms["first"], order="b")
    add_child(alice, rooms["space"], rooms["subspace"], order="a")
    add_child(alice, rooms["space"], rooms["suggested"], order="c", suggested=True)
    add_child(alice, rooms["space"], rooms["private"])
    add_child(alice, rooms["subspace"], rooms["deep"])
    return rooms


def test_walks_the_space_depth_first(make_user: Any) -> None:
    alice, bob = make_user("space"), make_user("bob")
    rooms = build_space(alice)
    body = hierarchy(bob, rooms["space"])
    # Children by `order` (those without last), each sub-space's own children right after it;
    # the private room is left out for Bob, who cannot see it.
    assert room_ids(body) == [rooms[k] for k in ("space", "subspace", "deep", "first", "suggested")]
    assert "next_batch" not in body

    entries = {r["room_id"]: r for r in body["rooms"]}
    root = entries[rooms["space"]]
    assert root["name"] == "The space" and root["topic"] == "Everything"
    assert root["room_type"] == "m.space"
    assert root["num_joined_members"] == 1
    assert root["join_rule"] == "public"
    assert root["world_readable"] is False and root["guest_can_join"] is False
    children = {c["state_key"]: c for c in root["children_state"]}
    assert set(children) == {rooms[k] for k in ("subspace", "first", "suggested", "private")}
    child = children[rooms["suggested"]]
    assert child["type"] == "m.space.child"
    assert child["content"] == {"via": ["test.local"], "order": "c", "suggested": True}
    assert child["sender"] == alice.user_id
    assert isinstance(child["origin_server_ts"], int)
    assert [c["state_key"] for c in entries[rooms["subspace"]]["children_state"]] == [rooms["deep"]]
    # An ordinary room is not a space: no children.
    assert entries[rooms["first"]]["children_state"] == []
    assert "room_type" not in entries[rooms["first"]]

    # Alice is in the private room and sees it.
    assert room_ids(hierarchy(alice, rooms["space"])) == [
        rooms[k] for k in ("space", "subspace", "deep", "first", "suggested", "private")
    ]
    # Invited to it, Bob sees it too.
    invite(alice, rooms["private"], bob.user_id)
    assert rooms["private"] in room_ids(hierarchy(bob, rooms["space"]))


def test_max_depth(make_user: Any) -> None:
    alice = make_user("space")
    rooms = build_space(alice)
    assert room_ids(hierarchy(alice, rooms["space"], max_depth=0)) == [rooms["space"]]
    assert room_ids(hierarchy(alice, rooms["space"], max_depth=1)) == [
        rooms[k] for k in ("space", "subspace", "first", "suggested", "private")
    ]
    assert rooms["deep"] in room_ids(hierarchy(alice, rooms["space"], max_depth=2))
    # Starting lower in the tree.
    assert room_ids(hierarchy(alice, rooms["subspace"])) == [rooms["subspace"], rooms["deep"]]


def test_limit_and_next_batch(make_user: Any) -> None:
    alice, bob = make_user("space"), make_user("bob")
    rooms = build_space(alice)
    pages = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = hierarchy(bob, rooms["space"], **params)
        pages.append(room_ids(body))
        if "next_batch" not in body:
            break
        params["from"] = body["next_batch"]
    assert [room for page in pages for room in page] == [
        rooms[k] for k in ("space", "subspace", "deep", "first", "suggested")
    ]
    assert all(0 < len(page) <= 2 for page in pages)
    assert_error(bob.get(f"{V1}/rooms/{enc(rooms['space'])}/hierarchy", params={"from": "nonsense"}), 400)


def test_suggested_only(make_user: Any) -> None:
    alice = make_user("space")
    rooms = build_space(alice)
    assert room_ids(hierarchy(alice, rooms["space"], suggested_only="true")) == [rooms["space"], rooms["suggested"]]


def test_removed_child_and_children_of_plain_rooms_are_ignored(make_user: Any) -> None:
    alice = make_user("space")
    space = create_room(alice, preset="public_chat", creation_content=SPACE)
    kept, removed, plain_child = (create_room(alice, preset="public_chat") for _ in range(3))
    add_child(alice, space, kept)
    add_child(alice, space, removed)
    put_state(alice, space, "m.space.child", {}, removed)
    # `kept` is no space, so its own m.space.child event does not make a child of it.
    add_child(alice, kept, plain_child)
    body = hierarchy(alice, space)
    assert room_ids(body) == [space, kept]
    assert [c["state_key"] for c in body["rooms"][0]["children_state"]] == [kept]
    assert body["rooms"][1]["children_state"] == []


def test_inaccessible_root_is_forbidden(make_user: Any, server_name: str) -> None:
    alice, bob = make_user("space"), make_user("bob")
    private_space = create_room(alice, preset="private_chat", creation_content=SPACE)
    public_room = create_room(alice, preset="public_chat")
    add_child(alice, private_space, public_room)
    body = assert_error(bob.get(f"{V1}/rooms/{enc(private_space)}/hierarchy"), 403, "M_FORBIDDEN")
    assert_matches_spec(body, "space_hierarchy.yaml", "/rooms/{roomId}/hierarchy", "get", 403)
    assert_error(bob.get(f"{V1}/rooms/{enc(f'!unknown:{server_name}')}/hierarchy"), 403, "M_FORBIDDEN")
    # Once a member, Bob may walk it.
    invite(alice, private_space, bob.user_id)
    join(bob, private_space)
    assert room_ids(hierarchy(bob, private_space)) == [private_space, public_room]


def test_restricted_rooms_are_shown_to_members_of_an_allowed_room(make_user: Any) -> None:
    alice, bob, carol = make_user("space"), make_user("bob"), make_user("carol")
    space = create_room(alice, preset="private_chat", creation_content=SPACE)
    restricted = create_room(alice, preset="private_chat", name="Space members only")
    put_state(alice, restricted, "m.room.join_rules",
              {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]})
    add_child(alice, space, restricted)
    public_space = create_room(alice, preset="public_chat", creation_content=SPACE)
    add_child(alice, public_space, restricted)

    invite(alice, space, bob.user_id)
    join(bob, space)
    body = hierarchy(bob, space)
    assert room_ids(body) == [space, restricted]
    entry = body["rooms"][1]
    assert entry["join_rule"] == "restricted"
    assert entry["allowed_room_ids"] == [space]
    # Carol, in no allowed room, sees the public space but not the restricted room.
    assert room_ids(hierarchy(carol, public_space)) == [public_space]
    assert room_ids(hierarchy(bob, public_space)) == [public_space, restricted]
    # Bob can indeed join it.
    join(bob, restricted)
