"""The published room directory: /directory/list/room/{roomId} and /publicRooms (GET and
POST), on both engines."""

import itertools
import secrets
from typing import Any

from tests.harness import Client
from tests.rooms_extra.helpers import create_room, enc, join, put_state
from tests.spec import assert_matches_spec
from tests.test_accounts import assert_error

_n = itertools.count(1)


def _visibility(client: Client, room_id: str) -> str:
    resp = client.get(f"directory/list/room/{enc(room_id)}", auth=False)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "list_public_rooms.yaml", "/directory/list/room/{roomId}", "get", 200)
    return resp.json()["visibility"]  # type: ignore[no-any-return]


def _search(client: Client, term: str, **body: Any) -> dict[str, Any]:
    resp = client.post("publicRooms", {"filter": {"generic_search_term": term}, **body})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "list_public_rooms.yaml", "/publicRooms", "post", 200)
    return resp.json()  # type: ignore[no-any-return]


def _get_public_rooms(client: Client, **params: Any) -> dict[str, Any]:
    resp = client.get("publicRooms", params=params, auth=False)
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "list_public_rooms.yaml", "/publicRooms", "get", 200)
    return resp.json()  # type: ignore[no-any-return]


def test_visibility_get_and_set(make_user: Any) -> None:
    alice, bob = make_user("dir"), make_user("bob")
    room_id = create_room(alice, preset="public_chat")
    assert _visibility(alice, room_id) == "private"
    published = create_room(alice, visibility="public")
    assert _visibility(alice, published) == "public"

    resp = alice.put(f"directory/list/room/{enc(room_id)}", {"visibility": "public"})
    assert resp.status_code == 200, resp.text
    assert_matches_spec(resp.json(), "list_public_rooms.yaml", "/directory/list/room/{roomId}", "put", 200)
    assert _visibility(alice, room_id) == "public"

    # A plain member may not change it, nor may an outsider.
    join(bob, room_id)
    assert_error(bob.put(f"directory/list/room/{enc(room_id)}", {"visibility": "private"}), 403, "M_FORBIDDEN")
    outsider = make_user("out")
    assert_error(outsider.put(f"directory/list/room/{enc(room_id)}", {"visibility": "private"}), 403, "M_FORBIDDEN")
    assert _visibility(alice, room_id) == "public"

    assert alice.put(f"directory/list/room/{enc(room_id)}", {"visibility": "private"}).status_code == 200
    assert _visibility(alice, room_id) == "private"
    assert_error(alice.put(f"directory/list/room/{enc(room_id)}", {"visibility": "sideways"}), 400)


def test_visibility_of_unknown_room(make_user: Any, server_name: str) -> None:
    alice = make_user("dir")
    assert_error(alice.get(f"directory/list/room/{enc(f'!nope:{server_name}')}"), 404, "M_NOT_FOUND")
    assert_error(alice.put(f"directory/list/room/{enc(f'!nope:{server_name}')}", {"visibility": "public"}), 404, "M_NOT_FOUND")


def test_public_rooms_lists_only_published_rooms_with_their_fields(make_user: Any, server_name: str) -> None:
    alice, bob = make_user("dir"), make_user("bob")
    tag = secrets.token_hex(4)
    alias_local = f"pub{tag}"
    published = create_room(alice, visibility="public", preset="public_chat", name=f"Published {tag}",
                             topic=f"All about {tag}", room_alias_name=alias_local)
    put_state(alice, published, "m.room.history_visibility", {"history_visibility": "world_readable"})
    put_state(alice, published, "m.room.guest_access", {"guest_access": "can_join"})
    join(bob, published)
    # Public join rule but not published, and published-then-withdrawn: neither is listed.
    create_room(alice, preset="public_chat", name=f"Unlisted {tag}")
    withdrawn = create_room(alice, visibility="public", name=f"Withdrawn {tag}")
    assert alice.put(f"directory/list/room/{enc(withdrawn)}", {"visibility": "private"}).status_code == 200

    body = _search(alice, tag)
    assert [r["room_id"] for r in body["chunk"]] == [published]
    room = body["chunk"][0]
    assert room["name"] == f"Published {tag}"
    assert room["topic"] == f"All about {tag}"
    assert room["canonical_alias"] == f"#{alias_local}:{server_name}"
    assert room["num_joined_members"] == 2
    assert room["world_readable"] is True
    assert room["guest_can_join"] is True
    assert room["join_rule"] == "public"

    # Unauthenticated GET sees it too, with the same fields.
    everything = _get_public_rooms(Client(alice.base_url))
    listed = {r["room_id"]: r for r in everything["chunk"]}
    assert listed[published] == room
    assert withdrawn not in listed
    assert everything["total_room_count_estimate"] >= len(everything["chunk"])

    # POST needs a token.
    assert_error(Client(alice.base_url).post("publicRooms", {}), 401, "M_MISSING_TOKEN")


def test_public_rooms_ordered_by_joined_members(make_user: Any) -> None:
    tag = secrets.token_hex(4)
    owner = make_user("dir")
    joiners = [make_user("j") for _ in range(3)]
    rooms = {}
    for members in (1, 3, 2, 4):
        room_id = create_room(owner, visibility="public", preset="public_chat", name=f"{tag} with {members}")
        for joiner in joiners[:members - 1]:
            join(joiner, room_id)
        rooms[members] = room_id
    body = _search(owner, tag)
    assert [r["room_id"] for r in body["chunk"]] == [rooms[4], rooms[3], rooms[2], rooms[1]]
    assert [r["num_joined_members"] for r in body["chunk"]] == [4, 3, 2, 1]


def test_public_rooms_paging(make_user: Any) -> None:
    tag = secrets.token_hex(4)
    owner = make_user("dir")
    made = {create_room(owner, visibility="public", name=f"Paged {tag} {i}") for i in range(5)}

    # POST with a filter, two at a time: next_batch walks forwards, prev_batch back.
    pages = []
    since = None
    for _ in range(5):
        body = _search(owner, tag, limit=2, **({"since": since} if since else {}))
        pages.append(body)
        assert len(body["chunk"]) <= 2
        assert ("prev_batch" in body) == (since is not None)
        since = body.get("next_batch")
        if since is None:
            break
    assert [len(p["chunk"]) for p in pages] == [2, 2, 1]
    seen = [r["room_id"] for p in pages for r in p["chunk"]]
    assert len(seen) == 5 and set(seen) == made
    assert all(p["total_room_count_estimate"] == 5 for p in pages)
    back = _search(owner, tag, limit=2, since=pages[2]["prev_batch"])
    assert back["chunk"] == pages[1]["chunk"]

    # GET pages over the whole directory likewise never repeat or skip a room.
    full = [r["room_id"] for r in _get_public_rooms(Client(owner.base_url))["chunk"]]
    paged: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = _get_public_rooms(Client(owner.base_url), **params)
        paged += [r["room_id"] for r in body["chunk"]]
        if "next_batch" not in body:
            break
        params["since"] = body["next_batch"]
    assert paged == full
    assert made <= set(full)


def test_generic_search_term_matches_name_topic_and_alias(make_user: Any) -> None:
    owner = make_user("dir")
    tag = secrets.token_hex(4)
    by_name = create_room(owner, visibility="public", name=f"Name {tag}")
    by_topic = create_room(owner, visibility="public", topic=f"Topic {tag.upper()}")
    by_alias = create_room(owner, visibility="public", room_alias_name=f"alias{tag}")
    create_room(owner, visibility="public", name="Unrelated")
    found = {r["room_id"] for r in _search(owner, tag)["chunk"]}
    assert found == {by_name, by_topic, by_alias}
    assert _search(owner, f"nothing-{tag}-matches")["chunk"] == []


def test_room_types_filter(make_user: Any) -> None:
    owner = make_user("dir")
    tag = secrets.token_hex(4)
    space = create_room(owner, visibility="public", name=f"Space {tag}", creation_content={"type": "m.space"})
    room = create_room(owner, visibility="public", name=f"Room {tag}")

    def types(room_types: list[Any]) -> set[str]:
        resp = owner.post("publicRooms", {"filter": {"generic_search_term": tag, "room_types": room_types}})
        assert resp.status_code == 200, resp.text
        assert_matches_spec(resp.json(), "list_public_rooms.yaml", "/publicRooms", "post", 200)
        return {r["room_id"] for r in resp.json()["chunk"]}

    assert types(["m.space"]) == {space}
    assert types([None]) == {room}
    assert types([None, "m.space"]) == {space, room}
    listed = {r["room_id"]: r for r in _search(owner, tag)["chunk"]}
    assert listed[space]["room_type"] == "m.space"
    assert "room_type" not in listed[room]


def test_public_rooms_of_another_server(make_user: Any, server_name: str) -> None:
    owner = make_user("dir")
    assert_error(Client(owner.base_url).get("publicRooms", params={"server": "other.example"}), 404)
    assert_error(owner.post("publicRooms", {}, params={"server": "other.example"}), 404)
    # Naming this server is the same as naming none.
    assert owner.post("publicRooms", {"limit": 1}, params={"server": server_name}).status_code == 200
